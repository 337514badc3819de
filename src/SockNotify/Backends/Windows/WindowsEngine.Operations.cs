using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SockNotify.Internal;
using static SockNotify.Interop.Kernel32;
using static SockNotify.Interop.Winsock;

namespace SockNotify.Backends.Windows;

/// <summary>
/// Overlapped operations, natively: each is one Winsock call with the slot's <see cref="OperationBlock"/> as its
/// OVERLAPPED, and ends when its packet (key <see cref="PacketKind.Operation"/>) is dequeued.
/// <para><b>Order.</b> One operation per side is in the kernel at a time, the head of its side's list (the seam's
/// promise); when it ends, the next head is issued under the same lock.</para>
/// <para><b>Lifetime of OVERLAPPED memory.</b> An operation is <see cref="OperationState.InKernel"/> from the call that
/// returned success or WSA_IO_PENDING (both queue a packet: FILE_SKIP_COMPLETION_PORT_ON_SUCCESS is not set) until its
/// packet is dequeued; only then is it finished and its slot free for reuse, so the block, the pinned buffers and the
/// address it points at outlive every kernel use. A call that fails at once queues nothing and finishes the operation
/// there. <see cref="_inKernel"/> counts the packets owed, which disposal waits for.</para>
/// <para><b>Pooled receives</b> hold no buffer while idle: a zero-byte WSARecv waits for data; when it completes, a
/// buffer is taken and a non-blocking recv fills it (WouldBlock: the zero-byte receive again; no free buffer: parked).</para>
/// </summary>
internal sealed unsafe partial class WindowsEngine
{
    private readonly OverlappedBlocks _blocks = new();

    /// <summary>Sockets ever associated with this kernel port: Windows cannot undo an association, only skip redoing it.</summary>
    private readonly ConditionalWeakTable<SafeSocketHandle, object> _associated = [];

    /// <summary>Operation packets the kernel owes (calls that queued one, not yet dequeued).</summary>
    private int _inKernel;

    /// <summary>Set by disposal: nothing new reaches the kernel.</summary>
    private volatile bool _quiescing;

    private bool _drained = true;

    /// <summary>What the engine keeps per associated socket (the association's EngineState).</summary>
    private sealed class SocketState
    {
        /// <summary>The address family, once known (a listener's, or a connected socket's), else 0.</summary>
        public ushort Family;

        /// <summary>Whether the socket has a local address (ConnectEx needs one).</summary>
        public bool Bound;
    }

    public override bool ReleasedEverything => _drained;

    public override SocketNotifyResult Associate(Association association)
    {
        SafeSocketHandle socket = association.Handle;
        SocketState state = new();
        byte* address = stackalloc byte[Interop.Socket.SockaddrStorageSize];
        int length = Interop.Socket.SockaddrStorageSize;
        if (GetSocketName(socket, address, &length) == 0)
        {
            state.Family = *(ushort*)address;
            state.Bound = true;
        }

        association.EngineState = state;
        if (_associated.TryGetValue(socket, out _))
        {
            return SocketNotifyResult.Success; // Associated before and dissociated: the kernel's association stayed.
        }

        if (AssociateWithPort(socket, _port.Handle, (nuint)PacketKind.Operation, 0) == 0)
        {
            // Typically ERROR_INVALID_PARAMETER: the socket is bound to another completion port (.NET's own, after an
            // async call on it).
            return Marshal.GetLastPInvokeError() == Interop.Win32Error.ERROR_NOT_ENOUGH_MEMORY
                ? SocketNotifyResult.InsufficientResources
                : SocketNotifyResult.SystemError;
        }

        _associated.AddOrUpdate(socket, state);
        return SocketNotifyResult.Success;
    }

    // The cancellations were requested under the lock already. The socket leaves the kernel port where Windows allows it
    // (8.1 and later), so that it is free for another port or for .NET's own; elsewhere the association stays, and
    // associating it with this port again skips the kernel (see _associated).
    public override void Dissociate(Association association) => Detach(association.Handle);

    private void Detach(SafeSocketHandle socket)
    {
        try
        {
            if (!socket.IsClosed && Interop.Ntdll.DetachFromCompletionPort(socket) == 0)
            {
                _associated.Remove(socket);
            }
        }
        catch (ObjectDisposedException)
        {
            // Closed meanwhile: the kernel dropped the association with the socket.
        }
    }

    public override SocketError Start(Operation operation, ref CompletionSink sink)
    {
        ref OperationList side = ref operation.Owner.SideOf(operation);
        if (side.Head == operation)
        {
            Process(ref side, ref sink);
        }

        return SocketError.IOPending;
    }

    public override void Advance(ref OperationList side, ref CompletionSink sink) => Process(ref side, ref sink);

    public override void Resume(Operation operation, ref CompletionSink sink)
    {
        ref OperationList side = ref operation.Owner.SideOf(operation);
        if (FillPooled(operation) == Pooled.Filled)
        {
            sink.Add(Port.Operations.Finish(operation));
        }

        Process(ref side, ref sink);
    }

    public override bool Cancel(Operation operation)
    {
        OperationBlock* block = _blocks.Get(operation.Slot);
        try
        {
            // ERROR_NOT_FOUND: the operation finished and its packet is queued; either way the packet ends it.
            _ = CancelIoEx(operation.Owner.Handle, &block->Overlapped);
        }
        catch (ObjectDisposedException)
        {
            // Closed: closing aborted it already.
        }

        return true;
    }

    /// <summary>
    /// Port disposal: the operations of ended associations are cancelled, and the kernel's packets for every operation
    /// are waited for (dequeued here, or by waiters that meet the disposed port), up to <see cref="QuiesceTimeout"/>.
    /// </summary>
    public override void Quiesce(List<Association> ended)
    {
        _quiescing = true;
        foreach (Association association in ended)
        {
            lock (association)
            {
                CancelInKernel(association.ReceiveSide);
                CancelInKernel(association.SendSide);
            }
        }

        long deadline = Environment.TickCount64 + (long)QuiesceTimeout.TotalMilliseconds;
        Span<OverlappedEntry> packets = stackalloc OverlappedEntry[64];
        CompletionEntry[] discarded = new CompletionEntry[64];
        int wakes = 0;
        while (Volatile.Read(ref _inKernel) > 0 && Environment.TickCount64 < deadline)
        {
            int removed = _port.Dequeue(packets, 10);
            CompletionSink sink = new(discarded, this);
            foreach (ref readonly OverlappedEntry packet in packets[..removed])
            {
                if ((PacketKind)packet.CompletionKey == PacketKind.Wake)
                {
                    wakes++; // Meant for the port's waiters: passed on below.
                    continue;
                }

                Handle(packet, ref sink);
            }

            foreach (CompletionEntry entry in discarded.AsSpan(0, sink.Count))
            {
                entry.DropUndelivered();
            }
        }

        for (; wakes > 0; wakes--)
        {
            Wake();
        }

        _drained = Volatile.Read(ref _inKernel) == 0;
        foreach (Association association in ended)
        {
            Detach(association.Handle); // The sockets outlive the port: free them for another.
        }
    }

    private static readonly TimeSpan QuiesceTimeout = TimeSpan.FromSeconds(5);

    private void CancelInKernel(OperationList side)
    {
        for (Operation? operation = side.Head; operation is not null; operation = operation.Next)
        {
            if (operation.State is OperationState.InKernel or OperationState.InKernelCancelling)
            {
                Cancel(operation);
            }
        }
    }

    /// <summary>An operation's packet: finishes it (or takes a pooled receive's next step) and issues its side's next.</summary>
    private void HandleOperationPacket(in OverlappedEntry packet, ref CompletionSink sink)
    {
        OperationBlock* block = (OperationBlock*)packet.Overlapped;
        Interlocked.Decrement(ref _inKernel);
        Operation? operation = Port.Operations.Find(new SlotToken(block->Token));
        if (operation is null)
        {
            return; // Cannot happen: an operation is recycled only here.
        }

        Association owner = operation.Owner;
        lock (owner)
        {
            bool cancelled = operation.State == OperationState.InKernelCancelling || owner.IsRemoved;
            operation.State = OperationState.Pending;
            SocketError error = packet.Internal == 0 ? SocketError.Success : ErrorOf(operation, block);
            ref OperationList side = ref owner.SideOf(operation);
            if (Complete(operation, block, error, (int)packet.NumberOfBytesTransferred, cancelled))
            {
                sink.Add(Port.Operations.Finish(operation));
            }

            Process(ref side, ref sink);
        }
    }

    /// <summary>The Winsock error of a failed operation (the packet's NTSTATUS is the kernel's word for it).</summary>
    private static SocketError ErrorOf(Operation operation, OperationBlock* block)
    {
        uint transferred;
        uint flags;
        try
        {
            if (!WSAGetOverlappedResult(operation.Owner.Handle, &block->Overlapped, &transferred, wait: false, &flags))
            {
                return (SocketError)Marshal.GetLastPInvokeError();
            }

            return SocketError.Success;
        }
        catch (ObjectDisposedException)
        {
            // The socket was closed, which is what ended the operation (Wine reports STATUS_HANDLES_CLOSED here,
            // Windows an abort).
            return SocketError.OperationAborted;
        }
    }

    /// <summary>
    /// Records an operation's outcome; false when a pooled receive goes on (issued again, or parked). A cancelled
    /// operation that finished first keeps its result, except a pooled receive whose wait for data finished: it has
    /// taken nothing yet, so the cancellation wins.
    /// </summary>
    private bool Complete(Operation operation, OperationBlock* block, SocketError error, int transferred, bool cancelled)
    {
        if (operation.Kind == OperationKind.Accept)
        {
            nint accepted = block->AcceptSocket;
            block->AcceptSocket = 0;
            if (error == SocketError.Success)
            {
                error = UpdateAcceptContext(operation.Owner.Handle, accepted);
            }

            if (error == SocketError.Success)
            {
                operation.SetAccepted((int)accepted); // Wrapped by the dequeuing thread (Windows handles fit 32 bits).
                return true;
            }

            _ = Interop.Winsock.CloseSocket(accepted);
        }

        if (cancelled && operation.Kind == OperationKind.ReceivePooled)
        {
            operation.Error = error == SocketError.Success ? SocketError.OperationAborted : error;
            return true;
        }

        if (error != SocketError.Success && !(error == SocketError.MessageSize && operation.Kind == OperationKind.ReceiveMessage))
        {
            operation.Error = error;
            return true;
        }

        switch (operation.Kind)
        {
            case OperationKind.Connect:
                _ = SetSocketOptionOn(operation.Owner.Handle, SO_UPDATE_CONNECT_CONTEXT, null, 0);
                if (operation.Owner.EngineState is SocketState state)
                {
                    state.Bound = true;
                }

                return true;
            case OperationKind.ReceivePooled:
                return FillPooled(operation) == Pooled.Filled;
            case OperationKind.ReceiveMessage:
                operation.Error = error;
                operation.Transferred = transferred;
                operation.Message->NameLength = (uint)Math.Max(0, block->AddressLength);
                return true;
            default:
                operation.Transferred = transferred;
                return true;
        }
    }

    private enum Pooled
    {
        /// <summary>Finished: with data in a pooled buffer, at the end of the stream, or with an error.</summary>
        Filled,

        /// <summary>No data after all: wait for it again (the operation is Pending at the head of its side).</summary>
        Again,

        /// <summary>Data waits and every buffer is lent: parked until one comes back.</summary>
        Parked,
    }

    /// <summary>A pooled receive whose zero-byte receive completed: takes a buffer and reads into it without blocking.</summary>
    private Pooled FillPooled(Operation operation)
    {
        SafeSocketHandle socket = operation.Owner.Handle;
        if (!Buffers.TryRent(out PooledBuffer buffer))
        {
            Port.Operations.Parked.Park(operation);
            return Pooled.Parked;
        }

        int received;
        int error = 0;
        try
        {
            received = Receive(socket, buffer.Address, buffer.Length, operation.MessageFlags);
            error = received < 0 ? Marshal.GetLastPInvokeError() : 0;
        }
        catch (ObjectDisposedException)
        {
            received = -1;
            error = (int)SocketError.OperationAborted;
        }

        if (received > 0)
        {
            operation.PooledBuffer = buffer;
            operation.Transferred = received;
            return Pooled.Filled;
        }

        buffer.Pool.Return(buffer); // The end of the stream, an error or no data: an idle connection holds no buffer.
        Port.Operations.Parked.OnBufferReturned();
        if (error == WSAEWOULDBLOCK)
        {
            return Pooled.Again;
        }

        operation.Error = (SocketError)error;
        return Pooled.Filled;
    }

    /// <summary>Issues the side's head while it is not in the kernel; finishes those that fail at once.</summary>
    private void Process(ref OperationList side, ref CompletionSink sink)
    {
        while (side.Head is { State: OperationState.Pending } operation && !operation.Owner.IsRemoved)
        {
            SocketError started = _quiescing ? SocketError.OperationAborted : Issue(operation);
            if (started == SocketError.IOPending)
            {
                return;
            }

            operation.Error = started;
            sink.Add(Port.Operations.Finish(operation));
        }
    }

    /// <summary>Makes the operation's Winsock call: IOPending when a packet will come, else the error (none will).</summary>
    private SocketError Issue(Operation operation)
    {
        OperationBlock* block = _blocks.Get(operation.Slot);
        block->Overlapped = default;
        block->Token = operation.Token.Value;
        block->Flags = (uint)operation.MessageFlags;
        int error;
        try
        {
            error = operation.Kind switch
            {
                OperationKind.Accept => IssueAccept(operation, block),
                OperationKind.Connect => IssueConnect(operation, block),
                OperationKind.Receive => IssueReceive(operation, block, operation.Buffer, operation.Length),
                OperationKind.ReceivePooled => IssueReceive(operation, block, null, 0),
                OperationKind.ReceiveMessage => IssueReceiveMessage(operation, block),
                OperationKind.Send => IssueSend(operation, block, operation.Buffer, operation.Length),
                _ => IssueSendMessage(operation, block),
            };
        }
        catch (ObjectDisposedException)
        {
            error = (int)SocketError.OperationAborted;
        }

        if (error is Interop.Win32Error.ERROR_SUCCESS or WSA_IO_PENDING)
        {
            operation.State = OperationState.InKernel;
            Interlocked.Increment(ref _inKernel);
            return SocketError.IOPending;
        }

        if (operation.Kind == OperationKind.Accept && block->AcceptSocket != 0)
        {
            _ = Interop.Winsock.CloseSocket(block->AcceptSocket);
            block->AcceptSocket = 0;
        }

        return (SocketError)error;
    }

    private static int Result(int result) => result == 0 ? 0 : Marshal.GetLastPInvokeError();

    private static int IssueReceive(Operation operation, OperationBlock* block, byte* buffer, int length)
    {
        WsaBuffer* buffers = OverlappedBlocks.Buffers(block, 1);
        buffers[0] = new WsaBuffer { Length = (uint)length, Pointer = buffer };
        return Result(WSARecv(operation.Owner.Handle, buffers, 1, null, &block->Flags, &block->Overlapped, 0));
    }

    private static int IssueSend(Operation operation, OperationBlock* block, byte* buffer, int length)
    {
        WsaBuffer* buffers = OverlappedBlocks.Buffers(block, 1);
        buffers[0] = new WsaBuffer { Length = (uint)length, Pointer = buffer };
        return Result(WSASend(operation.Owner.Handle, buffers, 1, null, (uint)operation.MessageFlags, &block->Overlapped, 0));
    }

    /// <summary>The operation's iovecs (Linux's layout, shared code's) as WSABUFs in the block.</summary>
    private static WsaBuffer* VectorOf(Operation operation, OperationBlock* block, out uint count)
    {
        count = (uint)operation.Message->IoVecCount;
        WsaBuffer* buffers = OverlappedBlocks.Buffers(block, (int)count);
        for (int i = 0; i < (int)count; i++)
        {
            Interop.Socket.IoVec vector = operation.Message->IoVecs[i];
            buffers[i] = new WsaBuffer { Length = (uint)vector.Length, Pointer = vector.Base };
        }

        return buffers;
    }

    private static int IssueReceiveMessage(Operation operation, OperationBlock* block)
    {
        WsaBuffer* buffers = VectorOf(operation, block, out uint count);
        if (operation.ReceivedAddress is null)
        {
            block->AddressLength = 0;
            return Result(WSARecv(operation.Owner.Handle, buffers, count, null, &block->Flags, &block->Overlapped, 0));
        }

        block->AddressLength = Interop.Socket.SockaddrStorageSize;
        return Result(WSARecvFrom(operation.Owner.Handle, buffers, count, null, &block->Flags, operation.AddressBuffer,
            &block->AddressLength, &block->Overlapped, 0));
    }

    private static int IssueSendMessage(Operation operation, OperationBlock* block)
    {
        WsaBuffer* buffers = VectorOf(operation, block, out uint count);
        return operation.AddressLength == 0
            ? Result(WSASend(operation.Owner.Handle, buffers, count, null, (uint)operation.MessageFlags, &block->Overlapped, 0))
            : Result(WSASendTo(operation.Owner.Handle, buffers, count, null, (uint)operation.MessageFlags, operation.AddressBuffer,
                operation.AddressLength, &block->Overlapped, 0));
    }

    private static int IssueAccept(Operation operation, OperationBlock* block)
    {
        ushort family = (operation.Owner.EngineState as SocketState)?.Family ?? AF_INET;
        nint accepted = WSASocket(family, SOCK_STREAM, IPPROTO_TCP, 0, 0, WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
        if (accepted == -1)
        {
            return Marshal.GetLastPInvokeError();
        }

        block->AcceptSocket = accepted;
        return Interop.WinsockExtensions.AcceptEx(operation.Owner.Handle, accepted, &block->Addresses, &block->Overlapped);
    }

    private static int IssueConnect(Operation operation, OperationBlock* block)
    {
        SafeSocketHandle socket = operation.Owner.Handle;
        SocketState? state = operation.Owner.EngineState as SocketState;
        if (state is not { Bound: true })
        {
            // ConnectEx needs a bound socket: bind to the wildcard address of the peer's family, port 0.
            ushort family = *(ushort*)operation.AddressBuffer;
            byte* wildcard = stackalloc byte[28];
            new Span<byte>(wildcard, 28).Clear();
            *(ushort*)wildcard = family;
            int length = family == AF_INET6 ? 28 : 16;
            if (Bind(socket, wildcard, length) != 0 && Marshal.GetLastPInvokeError() != WSAEINVAL)
            {
                return Marshal.GetLastPInvokeError();
            }

            if (state is not null)
            {
                state.Bound = true;
            }
        }

        return Interop.WinsockExtensions.ConnectEx(socket, operation.AddressBuffer, operation.AddressLength, &block->Overlapped);
    }

    private static SocketError UpdateAcceptContext(SafeSocketHandle listener, nint accepted)
    {
        nint listenerHandle = listener.DangerousGetHandle(); // Only its value: the option copies it, uses no reference.
        return SetSocketOption(accepted, SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT, &listenerHandle, sizeof(nint)) == 0
            ? SocketError.Success
            : (SocketError)Marshal.GetLastPInvokeError();
    }

    private static int SetSocketOptionOn(SafeSocketHandle socket, int option, void* value, int length)
    {
        bool added = false;
        try
        {
            socket.DangerousAddRef(ref added);
            return SetSocketOption(socket.DangerousGetHandle(), SOL_SOCKET, option, value, length);
        }
        catch (ObjectDisposedException)
        {
            return SOCKET_ERROR;
        }
        finally
        {
            if (added)
            {
                socket.DangerousRelease();
            }
        }
    }
}
