using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SockNotify.Backends;
using SockNotify.Backends.Epoll;
using SockNotify.Backends.IoUring;
using SockNotify.Internal;

namespace SockNotify;

// Overlapped operations: the I/O completion port model of the second seed (CreateIoCompletionPort, AcceptEx, WSARecv,
// WSASend and friends, CancelIoEx), sharing the port's threads and queue with socket notifications and posts.
public sealed partial class CompletionPort
{
    /// <summary>Pooled receives waiting for a buffer, each with the token of the use it was parked for.</summary>
    private readonly ConcurrentQueue<(Operation Operation, ulong Token)> _parked = new();
    private readonly List<Association> _closedScratch = [];
    private readonly Lock _sweepGate = new();
    private bool _swept;

    /// <summary>
    /// Associates a socket with this port under <paramref name="completionKey"/> (Win32's <c>CreateIoCompletionPort</c>
    /// on a socket): the operations started on it afterwards complete on this port, each completion carrying this key.
    /// The socket is made non-blocking. The association lasts until the socket is closed or the port is disposed; a
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
        Enter();
        try
        {
            SafeSocketHandle handle = socket.SafeHandle;
            ObjectDisposedException.ThrowIf(handle.IsClosed, socket);
            socket.Blocking = false;
            while (true)
            {
                if (SocketOwners.Find(handle) is { } existing)
                {
                    if (existing.Port.IsDisposed && existing.Port != this)
                    {
                        SocketOwners.Release(existing); // The other port is closing; take the socket over.
                        continue;
                    }

                    throw new InvalidOperationException(existing is Association && existing.Port == this
                        ? "The socket is already associated with this port."
                        : "The socket is registered or associated with a port already.");
                }

                Association association = _registrations.AllocateAssociation(this, handle, completionKey);
                lock (association)
                {
                    if (SocketOwners.TryClaim(association) is { } owner)
                    {
                        RegistrationTable.EndSilently(association);
                        if (owner.Handle.IsClosed)
                        {
                            EndClosed(owner); // A closed socket's entry held the number: end it and try again.
                        }

                        continue; // Claimed meanwhile: the lookup above explains by whom.
                    }

                    // Dispose sets the flag before it clears the table: either it is seen here, or the table's Clear
                    // ends this association.
                    if (_disposed || association.IsRemoved)
                    {
                        RegistrationTable.EndSilently(association);
                        ObjectDisposedException.ThrowIf(true, this);
                    }

                    SocketNotifyResult result = _operations.Associate(association);
                    if (result != SocketNotifyResult.Success)
                    {
                        RegistrationTable.EndSilently(association);
                        throw new SocketException((int)(result == SocketNotifyResult.InsufficientResources
                            ? SocketError.NoBufferSpaceAvailable : SocketError.SocketError));
                    }
                }

                JoinSweeper();
                return;
            }
        }
        finally
        {
            Exit();
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
    /// Cancels the socket's started operations (Win32's <c>CancelIoEx</c>): those whose context is
    /// <paramref name="context"/>, or all of them when it is null. Each still completes exactly once, with
    /// <see cref="SocketError.OperationAborted"/>, or with its own result if it finished first. Disposing the socket
    /// has the same effect on all its operations, within the port's sweep period (50 ms).
    /// </summary>
    /// <param name="socket">A socket associated with this port.</param>
    /// <param name="context">The context of the operations to cancel, or null for all.</param>
    /// <returns>True if at least one operation was asked to cancel.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public bool CancelIo(Socket socket, object? context = null)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Enter();
        try
        {
            if (SocketOwners.Find(socket.SafeHandle) is not Association association || association.Port != this)
            {
                return false;
            }

            CompletionSink sink = new([], this);
            bool cancelled;
            lock (association)
            {
                cancelled = Cancel(ref association.ReceiveSide, context, ref sink) | Cancel(ref association.SendSide, context, ref sink);
            }

            _operations.Flush();
            return cancelled;
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Gives a pooled buffer back (see <see cref="ReceivePooled"/>): exactly once per completion that carried one, after
    /// which its <see cref="CompletionEntry.PooledData"/> must not be read.
    /// </summary>
    /// <param name="entry">The completion that carried the buffer.</param>
    /// <remarks>
    /// Buffers lent when the port is disposed stay readable; giving them back then releases the pool's memory once
    /// the last one is back. A second return after the buffer was lent again cannot be detected.
    /// </remarks>
    /// <exception cref="ArgumentException">The entry holds no pooled buffer of this port.</exception>
    /// <exception cref="InvalidOperationException">The buffer was already given back.</exception>
    public void ReturnBuffer(in CompletionEntry entry)
    {
        if (entry.PooledBuffer is not { } buffer || !ReferenceEquals(buffer.Pool.Owner, this))
        {
            throw new ArgumentException("The entry holds no pooled buffer of this port.", nameof(entry));
        }

        if (!TryEnter())
        {
            if (!buffer.TryTakeBack()) // The port is gone: only the pool's memory is waiting for this buffer.
            {
                throw new InvalidOperationException("The pooled buffer was already given back.");
            }

            return;
        }

        try
        {
            if (!buffer.TryTakeBack())
            {
                throw new InvalidOperationException("The pooled buffer was already given back.");
            }

            _operations.ReturnBuffer(buffer);
            ResumeParked(1);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Operations started and not yet completed (leak tests).</summary>
    internal int OperationsInUse => _operationTable.InUse;

    /// <summary>The operation a kernel completion names, or null if that use is over.</summary>
    internal Operation? FindOperation(ulong token) => _operationTable.Find(token);

    /// <summary>An operation for a backend's own use (io_uring's multishot accept).</summary>
    internal Operation RentInternalOperation(OperationKind kind, Association owner)
    {
        Operation operation = _operationTable.RentInternal();
        operation.Kind = kind;
        operation.Owner = owner;
        return operation;
    }

    internal void ReturnInternalOperation(Operation operation) => _operationTable.Return(operation);

    /// <summary>
    /// Ends an operation: takes it off its association's list, builds its completion and recycles it. The caller holds
    /// the association's lock; this is the only way an operation ends, so it completes exactly once.
    /// </summary>
    internal CompletionEntry Finish(Operation operation)
    {
        operation.Owner.SideOf(operation).Remove(operation);
        CompletionEntry entry = operation.ToEntry();
        operation.PooledBuffer?.TryLend();
        _operationTable.Return(operation);
        return entry;
    }

    /// <summary>Ends an operation that never reached (or left) the kernel with OperationAborted; see <see cref="Finish"/>.</summary>
    internal CompletionEntry FinishAborted(Operation operation)
    {
        operation.Error = SocketError.OperationAborted;
        return Finish(operation);
    }

    /// <summary>Parks a pooled receive that found no free buffer until one comes back. The caller holds the association's lock.</summary>
    internal void ParkForBuffer(Operation operation)
    {
        if (operation.WaitingForBuffer)
        {
            return;
        }

        operation.WaitingForBuffer = true;
        _parked.Enqueue((operation, operation.Token));
        if (_operations.HasFreeBuffer)
        {
            // A buffer came back between the failed take and the park, and its return found no one to resume.
            ThreadPool.UnsafeQueueUserWorkItem(static port => port.ResumeParkedFromPool(), this, preferLocal: false);
        }
    }

    private (IOperationBackend, CompletionPortBackend) CreateOperationBackend(CompletionPortOptions options, EpollBackend epoll)
    {
        bool disabledByEnvironment = Environment.GetEnvironmentVariable("SOCKNOTIFY_IO_URING") == "0";
        if (options.Backend == CompletionPortBackend.IoUring
            || (options.Backend == CompletionPortBackend.Automatic && !disabledByEnvironment))
        {
            if (IoUringOperations.TryCreate(this, epoll, options.PooledBufferSize, options.PooledBufferCount,
                options.RingSubmissionEntries, options.RingCompletionEntries, out IoUringOperations? ring, out string? refusal))
            {
                return (ring!, CompletionPortBackend.IoUring);
            }

            if (options.Backend == CompletionPortBackend.IoUring)
            {
                throw new PlatformNotSupportedException($"io_uring is not available: {refusal}");
            }
        }

        return (new EpollOperations(this, epoll, options.PooledBufferSize, options.PooledBufferCount), CompletionPortBackend.Epoll);
    }

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

    private static unsafe void SetAddress(Operation operation, SocketAddress address)
    {
        address.Buffer.Span[..address.Size].CopyTo(new Span<byte>(operation.AddressBuffer, address.Size));
        operation.AddressLength = address.Size;
    }

    private static void EndClosed(Registration registration)
    {
        if (registration is Association association)
        {
            association.Port.EndClosedAssociation(association);
        }
        else
        {
            RegistrationTable.EndSilently(registration);
        }
    }

    /// <summary>
    /// Rents, fills and launches one operation: every public start goes through here. <paramref name="address"/> is
    /// the peer of a Connect or a SendTo, or where a ReceiveFrom writes its sender.
    /// </summary>
    private SocketError Start(
        Socket socket, OperationKind kind, int messageFlags, object? context, ReadOnlyMemory<byte> buffer = default,
        ReadOnlySpan<ReadOnlyMemory<byte>> buffers = default, SocketAddress? address = null)
    {
        Enter();
        try
        {
            if (!TryRent(socket, kind, context, messageFlags, out Operation operation, out SocketError error))
            {
                return error;
            }

            switch (kind)
            {
                case OperationKind.Receive or OperationKind.Send:
                    operation.SetBuffer(buffer);
                    break;
                case OperationKind.ReceivePooled:
                    _ = _operations.Buffers; // The pool (and io_uring's buffer ring) is filled on first use.
                    break;
                case OperationKind.Connect:
                    SetAddress(operation, address!);
                    break;
                case OperationKind.ReceiveMessage:
                    operation.SetIoVecs(buffers);
                    if (address is not null)
                    {
                        operation.ReceivedAddress = address;
                        operation.SetMessageAddress(Interop.Socket.SockaddrStorageSize);
                    }

                    break;
                case OperationKind.SendMessage:
                    operation.SetIoVecs(buffers);
                    if (address is not null)
                    {
                        SetAddress(operation, address);
                        operation.SetMessageAddress(operation.AddressLength);
                    }

                    break;
            }

            return Launch(operation);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Finds the socket's association and rents an operation for it; false (with the error to return) if the socket is closed.</summary>
    private bool TryRent(Socket socket, OperationKind kind, object? context, int messageFlags, out Operation operation, out SocketError error)
    {
        ArgumentNullException.ThrowIfNull(socket);
        SafeSocketHandle handle = socket.SafeHandle;
        Registration? registration = SocketOwners.Find(handle);
        if (handle.IsClosed)
        {
            operation = null!;
            error = SocketError.OperationAborted;
            return false;
        }

        if (registration is not Association association || association.Port != this)
        {
            throw new InvalidOperationException("The socket is not associated with this port; call Associate first.");
        }

        operation = _operationTable.Rent();
        operation.Kind = kind;
        operation.Owner = association;
        operation.Context = context;
        operation.MessageFlags = messageFlags;
        error = SocketError.IOPending;
        return true;
    }

    /// <summary>Puts the operation on its association's list and hands it to the backend.</summary>
    private SocketError Launch(Operation operation)
    {
        Association owner = operation.Owner;
        CompletionSink sink = new([], this);
        SocketError started;
        lock (owner)
        {
            if (owner.IsRemoved)
            {
                _operationTable.Return(operation); // The socket was closed since it was looked up.
                return SocketError.OperationAborted;
            }

            owner.SideOf(operation).Add(operation);
            started = _operations.Start(operation, ref sink);
            if (started != SocketError.IOPending)
            {
                owner.SideOf(operation).Remove(operation);
                _operationTable.Return(operation);
                return started;
            }
        }

        // A sleeping thread will not submit what this one batched: submit now. Otherwise the next waiter does
        // (it counts itself before it reads the submission queue; see _sleepers).
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _sleepers) != 0)
        {
            _operations.Flush();
        }

        return SocketError.IOPending;
    }

    private bool Cancel(ref OperationList side, object? context, ref CompletionSink sink)
    {
        bool cancelled = false;
        Operation? operation = side.Head;
        while (operation is not null)
        {
            Operation? next = operation.Next; // Cancelling may finish it and recycle it.
            if ((context is null || ReferenceEquals(operation.Context, context)) && !operation.CancelRequested)
            {
                operation.CancelRequested = true;
                cancelled = true;
                if (operation.WaitingForBuffer)
                {
                    sink.Add(FinishAborted(operation)); // Parked, not in the kernel: end it here.
                }
                else
                {
                    _operations.Cancel(operation, ref sink);
                }
            }

            operation = next;
        }

        if (cancelled)
        {
            _operations.Advance(ref side, ref sink); // The new first operation proceeds, in start order.
        }

        return cancelled;
    }

    /// <summary>Ends the association of a socket that was disposed, completing its operations with OperationAborted.</summary>
    private void EndClosedAssociation(Association association)
    {
        CompletionSink sink = new([], this);
        lock (association)
        {
            if (!association.TryMarkRemoved())
            {
                return;
            }

            Cancel(ref association.ReceiveSide, null, ref sink);
            Cancel(ref association.SendSide, null, ref sink);
        }

        _operations.Dissociate(association);
        _registrations.Free(association);
    }

    private void JoinSweeper()
    {
        if (Volatile.Read(ref _swept))
        {
            return;
        }

        lock (_sweepGate)
        {
            if (!_swept && !_disposed)
            {
                PortSweeper.Add(this);
                Volatile.Write(ref _swept, true);
            }
        }
    }

    /// <summary>Leaves the sweeper (port disposal).</summary>
    private void LeaveSweeper()
    {
        lock (_sweepGate)
        {
            if (_swept)
            {
                PortSweeper.Remove(this);
            }
        }
    }

    /// <summary>
    /// Runs every <see cref="PortSweeper.Period"/> once the port has associations: .NET gives no notice when a socket is
    /// disposed, so associations are checked for it here, and a batch started by a thread that then stopped dequeuing is
    /// submitted.
    /// </summary>
    internal void Sweep()
    {
        if (!TryEnter())
        {
            return;
        }

        try
        {
            _operations.Flush();
            lock (_sweepGate)
            {
                _registrations.CollectClosedAssociations(_closedScratch);
                foreach (Association association in _closedScratch)
                {
                    EndClosedAssociation(association);
                }

                _closedScratch.Clear();
            }
        }
        finally
        {
            Exit();
        }
    }

    private void ResumeParkedFromPool()
    {
        if (TryEnter())
        {
            try
            {
                ResumeParked(int.MaxValue);
            }
            finally
            {
                Exit();
            }
        }
    }

    /// <summary>Starts again up to <paramref name="count"/> parked pooled receives, while buffers are free.</summary>
    private void ResumeParked(int count)
    {
        int resumed = 0;
        while (resumed < count && _operations.HasFreeBuffer && _parked.TryDequeue(out (Operation Operation, ulong Token) parked))
        {
            Operation operation = parked.Operation;
            if (operation.Owner is not { } owner)
            {
                continue; // Finished and recycled meanwhile: a stale entry does not count.
            }

            CompletionSink sink = new([], this);
            lock (owner)
            {
                if (operation.Token != parked.Token || !operation.WaitingForBuffer)
                {
                    continue; // Cancelled, finished, or recycled for another use.
                }

                operation.WaitingForBuffer = false;
                if (operation.CancelRequested || owner.IsRemoved)
                {
                    ref OperationList side = ref owner.SideOf(operation);
                    sink.Add(FinishAborted(operation));
                    _operations.Advance(ref side, ref sink);
                    continue;
                }

                _operations.Resume(operation, ref sink);
                resumed++;
            }

            _operations.Flush();
        }
    }
}
