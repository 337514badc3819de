using System.Net.Sockets;
using SockNotify.Internal;

namespace SockNotify;

/// <summary>
/// One dequeued completion packet, the .NET shape of Win32's <c>OVERLAPPED_ENTRY</c>: a socket notification, a packet
/// posted with <see cref="CompletionPort.PostQueuedCompletionStatus"/>, or the completion of an overlapped operation.
/// </summary>
public readonly struct CompletionEntry
{
    /// <summary>
    /// The accepted socket or the pooled buffer of an operation's completion; inside the port, an Accept's result may
    /// still be the sentinel of an unwrapped descriptor (see <see cref="ForAcceptedDescriptor"/>), never seen by callers.
    /// </summary>
    private readonly object? _result;

    /// <summary>
    /// The pooled buffer's lease, which <see cref="CompletionPort.ReturnBuffer"/> checks; or, until the entry is delivered,
    /// an accepted connection's descriptor (see <see cref="ForAcceptedDescriptor"/>).
    /// </summary>
    private readonly uint _lease;

    /// <summary>What made the entry, for the meter's counts (it fits the struct's padding: no size cost).</summary>
    private readonly CompletionKind _kind;

    /// <summary>The result of an Accept whose descriptor is not yet wrapped into a <see cref="Socket"/>.</summary>
    private static readonly object s_acceptedDescriptor = new();

    /// <summary>A notification (<see cref="CompletionKind.Notification"/>) or a post (<see cref="CompletionKind.Post"/>).</summary>
    internal CompletionEntry(object? completionKey, uint bytesTransferred, object? context, CompletionKind kind)
    {
        CompletionKey = completionKey;
        BytesTransferred = bytesTransferred;
        Context = context;
        _kind = kind;
    }

    /// <summary>An operation's completion.</summary>
    internal CompletionEntry(object? completionKey, uint bytesTransferred, object? context, SocketError socketError, object? result, uint lease = 0)
        : this(completionKey, bytesTransferred, context, CompletionKind.Completion)
    {
        SocketError = socketError;
        _result = result;
        _lease = lease;
    }

    /// <summary>The registration's or association's completion key, or the key given to the post.</summary>
    public object? CompletionKey { get; }

    /// <summary>
    /// For an operation, the bytes it transferred (0 for a receive at end of stream, and for Accept and Connect); for a
    /// socket notification, the events as an integer (see <see cref="Events"/>); for a post, its byte count.
    /// </summary>
    public uint BytesTransferred { get; }

    /// <summary>
    /// The per-operation context (Win32's <c>lpOverlapped</c>): the object given when the operation was started, or the
    /// post's context; null for notifications.
    /// </summary>
    public object? Context { get; }

    /// <summary>
    /// The operation's result: <see cref="SocketError.Success"/>, the error it failed with, or
    /// <see cref="SocketError.OperationAborted"/> when it was cancelled or its socket closed. Success for notifications
    /// and posts.
    /// </summary>
    public SocketError SocketError { get; }

    /// <summary>
    /// The events of a socket notification (Winsock's <c>SocketNotificationRetrieveEvents</c>): the
    /// <see cref="BytesTransferred"/> field read as <see cref="SocketNotifyEvents"/>. Meaningless for other packets.
    /// </summary>
    public SocketNotifyEvents Events => (SocketNotifyEvents)BytesTransferred;

    /// <summary>
    /// For a successful Accept, the new connection: non-blocking, not associated with any port, owned by the caller.
    /// Null otherwise.
    /// </summary>
    public Socket? AcceptSocket => _result as Socket;

    /// <summary>
    /// For a successful <see cref="CompletionPort.ReceivePooled"/>, the received bytes, in a buffer of the port's pool
    /// that stays valid until it is given back with <see cref="CompletionPort.ReturnBuffer"/>. Empty otherwise.
    /// </summary>
    public ReadOnlyMemory<byte> PooledData =>
        _result is PooledBuffer buffer ? buffer.Memory[..(int)BytesTransferred] : ReadOnlyMemory<byte>.Empty;

    internal PooledBuffer? PooledBuffer => _result as PooledBuffer;

    /// <summary>Whether the entry is a notification, an operation's completion or a post.</summary>
    internal CompletionKind Kind => _kind;

    /// <summary>
    /// A successful Accept's entry as the engines produce it: the descriptor rides in the entry, and the dequeuing thread
    /// makes the <see cref="Socket"/> with <see cref="WithAcceptedSocket"/> just before the caller sees it.
    /// </summary>
    internal static CompletionEntry ForAcceptedDescriptor(object? completionKey, object? context, int fd) =>
        new(completionKey, 0, context, SocketError.Success, s_acceptedDescriptor, (uint)fd);

    /// <summary>Whether this entry still holds an accepted descriptor that <see cref="WithAcceptedSocket"/> must wrap.</summary>
    internal bool HoldsAcceptedDescriptor => ReferenceEquals(_result, s_acceptedDescriptor);

    /// <summary>
    /// The entry the caller receives for an accepted descriptor: with its new Socket, or with the error that kept .NET
    /// from wrapping it (the descriptor is then closed).
    /// </summary>
    internal CompletionEntry WithAcceptedSocket()
    {
        SocketError error = Interop.Socket.WrapAccepted((int)_lease, out Socket? accepted);
        return new CompletionEntry(CompletionKey, 0, Context, error, accepted);
    }

    /// <summary>Gives the pooled buffer back under this entry's lease; false if that lease is over.</summary>
    internal bool TryReturnPooledBuffer(PooledBuffer buffer) => buffer.TryTakeBack(_lease);

    /// <summary>
    /// Releases what an entry no one will dequeue holds (the port is being torn down): an accepted connection is closed
    /// now rather than by a finalizer, and a pooled buffer goes back, so the pool's memory is freed.
    /// </summary>
    internal void DropUndelivered()
    {
        if (HoldsAcceptedDescriptor)
        {
            _ = OperatingSystem.IsWindows() ? Interop.Winsock.CloseSocket((nint)_lease) : Interop.Close((int)_lease);
        }

        if (PooledBuffer is { } buffer)
        {
            TryReturnPooledBuffer(buffer);
        }
    }
}

/// <summary>The three kinds of entry a port delivers, as the meter counts them.</summary>
internal enum CompletionKind : byte
{
    /// <summary>An overlapped operation's completion.</summary>
    Completion,

    /// <summary>A socket notification, Remove included.</summary>
    Notification,

    /// <summary>A packet posted with <see cref="CompletionPort.PostQueuedCompletionStatus"/>.</summary>
    Post,
}
