using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SockNotify.Internal;

namespace SockNotify;

// Overlapped operations: the I/O completion port model of the second seed (CreateIoCompletionPort, AcceptEx, WSARecv,
// WSASend and friends, CancelIoEx), sharing the port's threads and queue with socket notifications and posts.
public sealed partial class CompletionPort
{
    /// <summary>
    /// Associates a socket with this port under <paramref name="completionKey"/> (Win32's <c>CreateIoCompletionPort</c>
    /// on a socket): the operations started on it afterwards complete on this port, each completion carrying this key.
    /// The socket is made non-blocking. The association lasts until <see cref="CloseSocket"/>, <see cref="Dissociate"/>,
    /// the socket's disposal or the port's; a
    /// socket is associated with at most one port and is then not available for notifications.
    /// </summary>
    /// <param name="socket">An open socket.</param>
    /// <param name="completionKey">Returned as <see cref="CompletionEntry.CompletionKey"/> with every completion.</param>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The socket or the port is disposed.</exception>
    /// <exception cref="InvalidOperationException">The socket is already associated or registered, with this port or another.</exception>
    /// <exception cref="SocketException">The kernel refused the association.</exception>
    public void Associate(Socket socket, object? completionKey)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _core.Lifetime.Enter();
        try
        {
            _core.Registrar.Associate(socket, completionKey);
            _core.Operations.JoinSweeper();
        }
        finally
        {
            _core.Lifetime.Exit();
        }
    }

    /// <summary>
    /// Starts accepting a connection on a listening socket (Winsock's <c>AcceptEx</c>). Several accepts may be pending
    /// at once; each completes with one connection in <see cref="CompletionEntry.AcceptSocket"/>.
    /// </summary>
    /// <param name="listener">A listening socket associated with this port.</param>
    /// <param name="context">Returned as <see cref="CompletionEntry.Context"/>.</param>
    /// <returns>
    /// <see cref="SocketError.IOPending"/>: the operation started and exactly one completion will be queued, whatever
    /// its outcome. Anything else: it did not start and nothing will be queued (<see cref="SocketError.OperationAborted"/>
    /// when the socket is closed).
    /// </returns>
    /// <exception cref="ArgumentNullException"><paramref name="listener"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The socket is not associated with this port.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public SocketError Accept(Socket listener, object? context) => Start(listener, OperationKind.Accept, 0, context);

    /// <summary>Starts connecting a socket to a remote endpoint (Winsock's <c>ConnectEx</c>, without data).</summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <param name="remoteEndPoint">The peer: an <see cref="IPEndPoint"/> or any endpoint that serializes to an address.</param>
    /// <param name="context">Returned as <see cref="CompletionEntry.Context"/>.</param>
    /// <returns>See <see cref="Accept"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentException"><paramref name="remoteEndPoint"/> has no address form.</exception>
    /// <exception cref="InvalidOperationException">The socket is not associated with this port.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public SocketError Connect(Socket socket, EndPoint remoteEndPoint, object? context)
    {
        ArgumentNullException.ThrowIfNull(remoteEndPoint);
        ArgumentNullException.ThrowIfNull(socket);
        if (socket.AddressFamily == AddressFamily.InterNetworkV6 && remoteEndPoint is IPEndPoint { AddressFamily: AddressFamily.InterNetwork } v4)
        {
            remoteEndPoint = new IPEndPoint(v4.Address.MapToIPv6(), v4.Port); // A dual-mode socket speaks IPv6 addresses.
        }

        if (remoteEndPoint is DnsEndPoint)
        {
            throw new ArgumentException("A DnsEndPoint has no address; resolve it to an IPEndPoint first.", nameof(remoteEndPoint));
        }

        SocketAddress address = remoteEndPoint.Serialize();
        CheckAddressSize(address);
        return Start(socket, OperationKind.Connect, 0, context, address: address);
    }

    /// <summary>
    /// Starts receiving into <paramref name="buffer"/> (Winsock's <c>WSARecv</c>). It completes when at least one
    /// byte arrived (the count is <see cref="CompletionEntry.BytesTransferred"/>), with 0 at the end of the stream, or
    /// with an error. The buffer stays pinned until the completion is dequeued and must not be touched before.
    /// </summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <param name="buffer">Where the bytes go.</param>
    /// <param name="flags">None, <see cref="SocketFlags.Peek"/> or <see cref="SocketFlags.OutOfBand"/>.</param>
    /// <param name="context">Returned as <see cref="CompletionEntry.Context"/>.</param>
    /// <returns>See <see cref="Accept"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="flags"/> has a flag a receive does not take.</exception>
    /// <exception cref="InvalidOperationException">The socket is not associated with this port.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public SocketError Receive(Socket socket, Memory<byte> buffer, SocketFlags flags, object? context) =>
        Start(socket, OperationKind.Receive, ReceiveFlags(flags), context, buffer);

    /// <summary>Starts a scatter receive into several buffers in order (Winsock's <c>WSARecv</c> with several WSABUFs).</summary>
    /// <inheritdoc cref="Receive(Socket, Memory{byte}, SocketFlags, object?)"/>
    public SocketError Receive(Socket socket, ReadOnlySpan<Memory<byte>> buffers, SocketFlags flags, object? context) =>
        Start(socket, OperationKind.ReceiveMessage, ReceiveFlags(flags), context, buffers: AsReadOnly(buffers));

    /// <summary>
    /// Starts a receive that takes a buffer from the port's pool only when data arrives, so that a connection waiting
    /// for data holds no buffer. The bytes come in <see cref="CompletionEntry.PooledData"/>, which must be given back
    /// with <see cref="ReturnBuffer"/>. While every buffer is lent, the receive waits for one (see
    /// <see cref="CompletionPortOptions.PooledBufferCount"/>).
    /// </summary>
    /// <inheritdoc cref="Receive(Socket, Memory{byte}, SocketFlags, object?)"/>
    public SocketError ReceivePooled(Socket socket, SocketFlags flags, object? context) =>
        Start(socket, OperationKind.ReceivePooled, ReceiveFlags(flags), context);

    /// <summary>
    /// Starts receiving one datagram and its sender's address (Winsock's <c>WSARecvFrom</c>). On success the address
    /// is written to <paramref name="remoteAddress"/> (its <see cref="SocketAddress.Size"/> updated).
    /// </summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <param name="buffer">Where the datagram goes.</param>
    /// <param name="flags">None, <see cref="SocketFlags.Peek"/> or <see cref="SocketFlags.OutOfBand"/>.</param>
    /// <param name="remoteAddress">Receives the sender's address; not to be touched until the completion.</param>
    /// <param name="context">Returned as <see cref="CompletionEntry.Context"/>.</param>
    /// <returns>See <see cref="Accept"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="flags"/> has a flag a receive does not take.</exception>
    /// <exception cref="InvalidOperationException">The socket is not associated with this port.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public SocketError ReceiveFrom(Socket socket, Memory<byte> buffer, SocketFlags flags, SocketAddress remoteAddress, object? context)
    {
        ArgumentNullException.ThrowIfNull(remoteAddress);
        ReadOnlyMemory<byte> single = buffer;
        return Start(socket, OperationKind.ReceiveMessage, ReceiveFlags(flags), context,
            buffers: new ReadOnlySpan<ReadOnlyMemory<byte>>(in single), address: remoteAddress);
    }

    /// <summary>
    /// Starts sending <paramref name="buffer"/> (Winsock's <c>WSASend</c>). On a stream socket it completes once every
    /// byte is in the kernel's send buffer, or with an error. If the connection fails after part of it went, it
    /// completes with Success and a smaller <see cref="CompletionEntry.BytesTransferred"/>, and the next operation
    /// meets the error. The buffer stays pinned until the completion is dequeued.
    /// </summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <param name="buffer">The bytes to send.</param>
    /// <param name="flags">None, <see cref="SocketFlags.DontRoute"/> or <see cref="SocketFlags.OutOfBand"/>.</param>
    /// <param name="context">Returned as <see cref="CompletionEntry.Context"/>.</param>
    /// <returns>See <see cref="Accept"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="flags"/> has a flag a send does not take.</exception>
    /// <exception cref="InvalidOperationException">The socket is not associated with this port.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public SocketError Send(Socket socket, ReadOnlyMemory<byte> buffer, SocketFlags flags, object? context) =>
        Start(socket, OperationKind.Send, SendFlags(flags), context, buffer);

    /// <summary>Starts a gather send of several buffers in order (Winsock's <c>WSASend</c> with several WSABUFs).</summary>
    /// <inheritdoc cref="Send(Socket, ReadOnlyMemory{byte}, SocketFlags, object?)"/>
    public SocketError Send(Socket socket, ReadOnlySpan<ReadOnlyMemory<byte>> buffers, SocketFlags flags, object? context) =>
        Start(socket, OperationKind.SendMessage, SendFlags(flags), context, buffers: buffers);

    /// <summary>Starts sending one datagram to <paramref name="remoteAddress"/> (Winsock's <c>WSASendTo</c>).</summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <param name="buffer">The datagram.</param>
    /// <param name="flags">None, <see cref="SocketFlags.DontRoute"/> or <see cref="SocketFlags.OutOfBand"/>.</param>
    /// <param name="remoteAddress">The destination; copied, so it may be reused at once.</param>
    /// <param name="context">Returned as <see cref="CompletionEntry.Context"/>.</param>
    /// <returns>See <see cref="Accept"/>.</returns>
    /// <exception cref="ArgumentNullException">An argument is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="flags"/> has a flag a send does not take.</exception>
    /// <exception cref="InvalidOperationException">The socket is not associated with this port.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public SocketError SendTo(Socket socket, ReadOnlyMemory<byte> buffer, SocketFlags flags, SocketAddress remoteAddress, object? context)
    {
        ArgumentNullException.ThrowIfNull(remoteAddress);
        CheckAddressSize(remoteAddress);
        return Start(socket, OperationKind.SendMessage, SendFlags(flags), context,
            buffers: new ReadOnlySpan<ReadOnlyMemory<byte>>(in buffer), address: remoteAddress);
    }

    /// <summary>
    /// Ends the socket's association with this port without closing the socket: its started operations complete with
    /// <see cref="SocketError.OperationAborted"/> (an operation that finished first keeps its result), each exactly once,
    /// and the port lets go of the socket, which stays open and non-blocking and may be associated again, with this port
    /// or another, or registered for notifications.
    /// </summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <returns>False if the socket was not associated with this port (nothing changed).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public bool Dissociate(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _core.Lifetime.Enter();
        try
        {
            if (_core.Registrar.TryFindAssociation(SocketHandles.Of(socket)) is not { } association)
            {
                return false;
            }

            _core.Operations.EndAssociation(association);
            return true;
        }
        finally
        {
            _core.Lifetime.Exit();
        }
    }

    /// <summary>
    /// Cancels the socket's started operations (Win32's <c>CancelIoEx</c>): those whose context is
    /// <paramref name="context"/>, or all of them when it is null. Each still completes exactly once, with
    /// <see cref="SocketError.OperationAborted"/>, or with its own result if it finished first. <see cref="CloseSocket"/>
    /// has the same effect on all its operations at once, and disposing the socket at the port's next sweep that reaches
    /// it (every 50 ms, 16,384 associations at a time).
    /// </summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <param name="context">The context of the operations to cancel, or null for all.</param>
    /// <returns>True if at least one operation was asked to cancel.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public bool CancelIo(Socket socket, object? context = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _core.Lifetime.Enter();
        try
        {
            return _core.Operations.Cancel(socket, context);
        }
        finally
        {
            _core.Lifetime.Exit();
        }
    }

    /// <summary>
    /// Gives a pooled buffer back (see <see cref="ReceivePooled"/>): exactly once per completion that carried one, after
    /// which its <see cref="CompletionEntry.PooledData"/> must not be read.
    /// </summary>
    /// <param name="entry">The completion that carried the buffer.</param>
    /// <remarks>
    /// Buffers lent when the port is disposed stay readable; giving them back then releases the pool's memory once
    /// the last one is back (unless the kernel held on to a buffer past disposal's bound: then it is kept, not reused).
    /// </remarks>
    /// <exception cref="ArgumentException">The entry holds no pooled buffer of this port.</exception>
    /// <exception cref="InvalidOperationException">
    /// The buffer was already given back with this completion, or with an earlier completion that carried the same
    /// buffer before it was lent again.
    /// </exception>
    public void ReturnBuffer(in CompletionEntry entry)
    {
        if (entry.PooledBuffer is not { } buffer || !ReferenceEquals(buffer.Pool.Owner, _core))
        {
            throw new ArgumentException("The entry holds no pooled buffer of this port.", nameof(entry));
        }

        _core.Operations.Parked.ReturnBuffer(entry, buffer);
    }

    /// <summary>Operations started and not yet completed (leak tests).</summary>
    internal int OperationsInUse => _core.Operations.InUse;

    private static int ReceiveFlags(SocketFlags flags) =>
        (flags & ~(SocketFlags.Peek | SocketFlags.OutOfBand)) == 0
            ? (int)flags // Linux's MSG_PEEK and MSG_OOB have Winsock's values.
            : throw new ArgumentOutOfRangeException(nameof(flags), flags, "A receive takes only Peek and OutOfBand.");

    private static int SendFlags(SocketFlags flags) =>
        (flags & ~(SocketFlags.DontRoute | SocketFlags.OutOfBand)) == 0
            ? (int)flags // Linux's MSG_DONTROUTE and MSG_OOB have Winsock's values.
            : throw new ArgumentOutOfRangeException(nameof(flags), flags, "A send takes only DontRoute and OutOfBand.");

    // Memory<T> and ReadOnlyMemory<T> have one layout; the runtime converts between them the same way.
    private static ReadOnlySpan<ReadOnlyMemory<byte>> AsReadOnly(ReadOnlySpan<Memory<byte>> buffers) =>
        MemoryMarshal.CreateReadOnlySpan(ref Unsafe.As<Memory<byte>, ReadOnlyMemory<byte>>(ref MemoryMarshal.GetReference(buffers)), buffers.Length);

    private static void CheckAddressSize(SocketAddress address)
    {
        if (address.Size > Interop.Socket.SockaddrStorageSize)
        {
            throw new ArgumentException("The address is longer than any socket address.", nameof(address));
        }
    }

    /// <summary>Every public start: validated here, then rented, filled and launched by the operation manager.</summary>
    private SocketError Start(
        Socket socket, OperationKind kind, int messageFlags, object? context, ReadOnlyMemory<byte> buffer = default,
        ReadOnlySpan<ReadOnlyMemory<byte>> buffers = default, SocketAddress? address = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _core.Lifetime.Enter();
        try
        {
            return _core.Operations.Start(socket, kind, messageFlags, context, buffer, buffers, address);
        }
        finally
        {
            _core.Lifetime.Exit();
        }
    }
}
