using System.Net.Sockets;
using SockNotify.Internal;
using static SockNotify.Interop;
using static SockNotify.Interop.Socket;

namespace SockNotify.Backends.Linux;

/// <summary>
/// The Linux engine for systems without io_uring: overlapped operations emulated over epoll. Each associated socket is
/// registered edge-triggered for In, Out and Hangup, and an operation is performed (a non-blocking system call) when it
/// reaches the head of its side's list and again on each readiness edge, until the call no longer reports WouldBlock;
/// then it finishes. Calls run under the association's lock, so a readiness edge and a new operation never both miss
/// each other, and the operations of one side run in start order. No operation is ever
/// <see cref="OperationState.InKernel"/>: the work is done by the thread that starts an operation and by the threads that
/// dequeue.
/// </summary>
internal sealed unsafe class EpollEngine(PortCore port, CompletionPortOptions options, EpollSelector epoll)
    : LinuxEngine(port, options, epoll)
{
    /// <summary><see cref="Operation.EngineFlags"/>: a Connect made its first connect(2) call.</summary>
    private const byte ConnectCalled = 1;

    public override CompletionPortBackend Backend => CompletionPortBackend.Epoll;

    public override bool HasFreeBuffer => Buffers.HasFree;

    public override bool ReleasedEverything => true;

    public override SocketNotifyResult Associate(Association association) =>
        Epoll.Add(association.Handle, association.Token, SocketNotifyEvents.In | SocketNotifyEvents.Out | SocketNotifyEvents.Hangup,
            SocketNotifyTrigger.Edge | SocketNotifyTrigger.Persistent);

    // A socket that lives on must leave the epoll set (it may be associated again); for a closed one the kernel already
    // dropped the registration (and asking would only make the marshaller throw).
    public override void Dissociate(Association association)
    {
        if (!association.Handle.IsClosed)
        {
            Epoll.Delete(association.Handle);
        }
    }

    public override SocketError Start(Operation operation, ref CompletionSink sink)
    {
        ref OperationList side = ref operation.Owner.SideOf(operation);
        if (side.Head == operation)
        {
            // The readiness edge that would announce it may already have been consumed: try now.
            Process(ref side, ref sink);
        }

        return SocketError.IOPending;
    }

    public override void Resume(Operation operation, ref CompletionSink sink) => Start(operation, ref sink);

    // The new first operation may find its data already there: readiness edges do not repeat.
    public override void Advance(ref OperationList side, ref CompletionSink sink) => Process(ref side, ref sink);

    // Never called: no operation is ever in the kernel here, so the port finishes cancelled ones itself.
    public override bool Cancel(Operation operation) => throw new InvalidOperationException("No epoll operation is in the kernel.");

    public override void ReturnBuffer(PooledBuffer buffer) => buffer.Pool.Return(buffer);

    // Operations are system calls made under the association's lock, never after the association ended; so once every
    // ended association's lock has been taken, no call is left in flight on any buffer.
    public override void Quiesce(List<Association> ended)
    {
        foreach (Association association in ended)
        {
            lock (association)
            {
            }
        }
    }

    public override void Dispose()
    {
        CreatedBuffers?.Dispose();
        base.Dispose();
    }

    // epoll hands the ready events one waiter left to another waiter itself.
    protected override bool CompletionsWaiting => false;

    protected override int WaitForEvents(Span<ReadyEvent> ready, int timeoutMilliseconds) => Epoll.Wait(ready, timeoutMilliseconds);

    protected override void Reap(ref CompletionSink sink, int max)
    {
    }

    protected override void OnAssociationReady(Association association, SocketNotifyEvents events, ref CompletionSink sink)
    {
        const SocketNotifyEvents always = SocketNotifyEvents.Hangup | SocketNotifyEvents.Err | ReadyEvent.Closed;
        lock (association)
        {
            if ((events & (SocketNotifyEvents.In | always)) != 0)
            {
                Process(ref association.ReceiveSide, ref sink);
            }

            if ((events & (SocketNotifyEvents.Out | always)) != 0)
            {
                Process(ref association.SendSide, ref sink);
            }
        }
    }

    private void Process(ref OperationList side, ref CompletionSink sink)
    {
        while (side.Head is { } operation && !operation.Owner.IsRemoved && TryPerform(operation))
        {
            sink.Add(Port.Operations.Finish(operation));
        }
    }

    /// <summary>Makes the operation's system call; false while it would block (or waits for a buffer).</summary>
    private bool TryPerform(Operation operation)
    {
        SafeSocketHandle socket = operation.Owner.Handle;
        try
        {
            return operation.Kind switch
            {
                OperationKind.Accept => TryAccept(operation, socket),
                OperationKind.Connect => TryConnect(operation, socket),
                OperationKind.Receive when operation.Length == 0 => TryWaitForData(operation, socket),
                OperationKind.Receive => Finished(operation, Interop.Socket.Receive(socket, operation.Buffer, (nuint)operation.Length, operation.MessageFlags | MSG_DONTWAIT)),
                OperationKind.ReceivePooled => TryReceivePooled(operation, socket),
                OperationKind.ReceiveMessage => Finished(operation, ReceiveMessage(socket, operation.Message, operation.MessageFlags | MSG_DONTWAIT)),
                OperationKind.Send => TrySend(operation, socket),
                _ => TrySendMessage(operation, socket),
            };
        }
        catch (ObjectDisposedException)
        {
            // The socket was disposed; its descriptor is gone, so the operation is over.
            operation.Error = SocketError.OperationAborted;
            return true;
        }
    }

    /// <summary>Records the result of a one-call operation; false on WouldBlock.</summary>
    private static bool Finished(Operation operation, nint result)
    {
        if (result >= 0)
        {
            operation.Transferred = (int)result;
            return true;
        }

        Errno errno = LastErrno();
        if (errno == Errno.EAGAIN)
        {
            return false;
        }

        operation.Error = ToSocketError(errno);
        return true;
    }

    /// <summary>
    /// A zero-byte receive completes once data (or the end of the stream) is there, as Winsock's does, so that a
    /// connection can wait for data holding no buffer: it peeks one byte, as .NET does on Unix, and consumes nothing.
    /// </summary>
    private static bool TryWaitForData(Operation operation, SafeSocketHandle socket)
    {
        byte peeked;
        nint result = Interop.Socket.Receive(socket, &peeked, 1, operation.MessageFlags | MSG_PEEK | MSG_DONTWAIT);
        return Finished(operation, Math.Min(result, 0));
    }

    private static bool TryAccept(Operation operation, SafeSocketHandle listener)
    {
        int fd = Interop.Socket.Accept(listener, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
        {
            return Finished(operation, -1);
        }

        operation.SetAccepted(fd);
        return true;
    }

    // Calling connect again answers the question of a non-blocking connect: EALREADY while in progress, EISCONN once
    // connected, the failure otherwise. EISCONN on the first call means the socket was connected before: an error, as
    // io_uring and Winsock report it.
    private static bool TryConnect(Operation operation, SafeSocketHandle socket)
    {
        bool firstCall = (operation.EngineFlags & ConnectCalled) == 0;
        operation.EngineFlags |= ConnectCalled;
        if (Interop.Socket.Connect(socket, operation.AddressBuffer, (uint)operation.AddressLength) == 0)
        {
            return true;
        }

        Errno errno = LastErrno();
        switch (errno)
        {
            case Errno.EINPROGRESS or Errno.EALREADY:
                return false;
            case Errno.EISCONN when firstCall:
                operation.Error = SocketError.IsConnected;
                return true;
            case Errno.EISCONN:
                return true;
            default:
                operation.Error = ToSocketError(errno);
                return true;
        }
    }

    private bool TryReceivePooled(Operation operation, SafeSocketHandle socket)
    {
        if (!Buffers.TryRent(out PooledBuffer buffer))
        {
            // Parked only with data waiting, so that the receive a returned buffer resumes takes it. The end of the
            // stream or an error needs no buffer, and with nothing to read the next readiness edge comes back here.
            byte peeked;
            nint peek = Interop.Socket.Receive(socket, &peeked, 1, operation.MessageFlags | MSG_PEEK | MSG_DONTWAIT);
            if (peek > 0)
            {
                Port.Operations.Parked.Park(operation);
                return false;
            }

            return Finished(operation, peek);
        }

        nint received = Interop.Socket.Receive(socket, buffer.Address, (nuint)buffer.Length, operation.MessageFlags | MSG_DONTWAIT);
        Errno errno = received < 0 ? LastErrno() : 0;
        if (received > 0)
        {
            operation.PooledBuffer = buffer;
            operation.Transferred = (int)received;
            return true;
        }

        buffer.Pool.Return(buffer); // End of stream or no data: an idle connection holds no buffer.
        Port.Operations.Parked.OnBufferReturned(); // A receive that parked meanwhile may take it.
        if (errno == Errno.EAGAIN)
        {
            return false;
        }

        operation.Error = ToSocketError(errno);
        return true;
    }

    private static bool TrySend(Operation operation, SafeSocketHandle socket)
    {
        // A stream send completes only when every byte is in the kernel (or on an error), as Winsock's does.
        while (true)
        {
            nint sent = Interop.Socket.Send(socket, operation.Buffer, (nuint)operation.Length, operation.MessageFlags | MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent < 0)
            {
                return SendFailed(operation);
            }

            if (!operation.ConsumeSent((int)sent))
            {
                return true;
            }
        }
    }

    private static bool TrySendMessage(Operation operation, SafeSocketHandle socket)
    {
        while (true)
        {
            nint sent = SendMessage(socket, operation.Message, operation.MessageFlags | MSG_DONTWAIT | MSG_NOSIGNAL);
            if (sent < 0)
            {
                return SendFailed(operation);
            }

            if (!operation.ConsumeSent((int)sent))
            {
                return true;
            }
        }
    }

    /// <summary>
    /// A send call failed: false on WouldBlock. Otherwise the send ends with the error, its count saying how many bytes
    /// went before it, as io_uring reports a send that stops short.
    /// </summary>
    private static bool SendFailed(Operation operation)
    {
        Errno errno = LastErrno();
        if (errno == Errno.EAGAIN)
        {
            return false;
        }

        operation.Error = ToSocketError(errno);
        return true;
    }
}
