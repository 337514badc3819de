using System.Net.Sockets;

namespace SockNotify.Internal;

/// <summary>
/// One socket's registration with one port, from Enable (create) until Remove, port disposal or the socket's close.
/// An instance is never reused: a new registration of the same socket, or of another socket that gets the same
/// descriptor number, is a new instance with a new token, so a stale kernel event can never reach it.
/// A socket associated for overlapped operations is an <see cref="Association"/>, the derived kind.
/// </summary>
internal class Registration
{
    private int _deliverable;
    private int _removed;

    public Registration(CompletionPort port, SafeSocketHandle handle, object? completionKey, int slot, uint generation)
    {
        Port = port;
        Handle = handle;
        CompletionKey = completionKey;
        Slot = slot;
        Token = ((ulong)generation << 32) | (uint)slot;
    }

    public CompletionPort Port { get; }

    public SafeSocketHandle Handle { get; }

    public object? CompletionKey { get; }

    public int Slot { get; }

    /// <summary>The kernel registration's data: generation in the high half, slot in the low half.</summary>
    public ulong Token { get; }

    /// <summary>
    /// What a ready event may deliver: the filter plus Err while enabled; None while disabled and forever once removed.
    /// Written under the registration's lock, read without it by every dequeuing thread.
    /// </summary>
    public SocketNotifyEvents Deliverable
    {
        get => (SocketNotifyEvents)Volatile.Read(ref _deliverable);
        set => Volatile.Write(ref _deliverable, (int)value);
    }

    public bool IsRemoved => Volatile.Read(ref _removed) != 0;

    /// <summary>
    /// Ends the registration. Exactly one caller wins, whether it is Remove, the closed-socket sweep or port disposal,
    /// and only the winner frees the slot or queues a Remove notification.
    /// </summary>
    public bool TryMarkRemoved()
    {
        if (Interlocked.Exchange(ref _removed, 1) != 0)
        {
            return false;
        }

        Deliverable = SocketNotifyEvents.None;
        return true;
    }
}
