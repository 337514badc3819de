using System.Net;
using System.Net.Sockets;
using SockNotify.Backends;
using static SockNotify.Interop.Socket;

namespace SockNotify.Internal;

/// <summary>
/// The shared half of overlapped operations: it rents an operation from the lookaside list, fills it, puts it on its
/// association's side and hands it to the engine; it cancels; and it is the only place an operation ends
/// (<see cref="Finish"/>), so each one completes exactly once. Engines reach operations through it (and the port's
/// registrations and lifetime, see <see cref="PortCore"/>). An operation's native block has Linux's shape (msghdr,
/// iovecs, sockaddr); a Windows engine would lay out its WSABUFs and OVERLAPPED there instead.
/// <para>
/// Locks: an association's lock guards its side lists and the state of each operation on them. It is held around
/// the engine's Start (in <c>Launch</c>), Cancel and Advance (in <c>Cancel</c>, also when an association ends), and Resume (in <see cref="ParkedReceives"/>); engines take it themselves around <see cref="Finish"/> when a
/// kernel report ends an operation. Dissociate, SubmitStarted and Flush run without it. The lookaside list and the
/// parked queue have locks of their own, never held while taking an association's.
/// </para>
/// <para>
/// Sockets disposed with <see cref="Socket.Dispose()"/> instead of <see cref="CompletionPort.CloseSocket"/> give no
/// notice: the process's <see cref="PortSweeper"/> calls <see cref="Sweep"/> every <see cref="PortSweeper.Period"/>,
/// which ends their associations, and submits work a thread left batched when it stopped dequeuing.
/// </para>
/// </summary>
internal sealed class OperationManager
{
    private readonly PortCore _port;
    private readonly OperationTable _table = new();
    /// <summary>Associations one sweep looks at: a bounded cost per period, whatever the number of associations.</summary>
    internal const int SweepBudget = 16_384;

    private readonly List<Association> _closedScratch = [];
    private readonly Lock _sweepGate = new();
    private bool _swept;
    private int _sweepCursor;

    public OperationManager(PortCore port)
    {
        _port = port;
        Parked = new ParkedReceives(port);
    }

    /// <summary>Pooled receives waiting for a buffer.</summary>
    public ParkedReceives Parked { get; }

    /// <summary>Operations started and not yet completed.</summary>
    public int InUse => _table.InUse;

    /// <summary>The operation a kernel report names, or null if that use is over.</summary>
    public Operation? Find(SlotToken token) => _table.Find(token);

    /// <summary>
    /// Rents, fills and launches one operation: every public start comes here. <paramref name="address"/> is the peer
    /// of a Connect or a SendTo, or where a ReceiveFrom writes its sender. The caller is inside the port.
    /// </summary>
    public SocketError Start(
        Socket socket, OperationKind kind, int messageFlags, object? context, ReadOnlyMemory<byte> buffer,
        ReadOnlySpan<ReadOnlyMemory<byte>> buffers, SocketAddress? address)
    {
        if (_port.Registrar.FindAssociation(SocketHandles.Of(socket)) is not { } association)
        {
            return SocketError.OperationAborted; // The socket is closed.
        }

        Operation operation = _table.Rent();
        operation.Kind = kind;
        operation.Owner = association;
        operation.Context = context;
        operation.MessageFlags = messageFlags;
        switch (kind)
        {
            case OperationKind.Receive or OperationKind.Send:
                operation.SetBuffer(buffer);
                break;
            case OperationKind.ReceivePooled:
                _port.Engine.EnsurePool();
                break;
            case OperationKind.Connect:
                SetAddress(operation, address!);
                break;
            case OperationKind.ReceiveMessage:
                operation.SetIoVecs(buffers);
                if (address is not null)
                {
                    operation.ReceivedAddress = address;
                    operation.SetMessageAddress(SockaddrStorageSize);
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

    /// <summary>Cancels the socket's operations with <paramref name="context"/> (all for null); see <see cref="CompletionPort.CancelIo"/>.</summary>
    public bool Cancel(Socket socket, object? context)
    {
        if (_port.Registrar.TryFindAssociation(SocketHandles.Of(socket)) is not { } association)
        {
            return false;
        }

        CompletionSink sink = new([], _port.Engine);
        bool cancelled;
        lock (association)
        {
            cancelled = Cancel(ref association.ReceiveSide, context, ref sink) | Cancel(ref association.SendSide, context, ref sink);
        }

        _port.Engine.Flush();
        return cancelled;
    }

    /// <summary>
    /// Ends an operation: takes it off its association's list, builds its completion and recycles it. The caller holds
    /// the association's lock; this is the only way an operation ends, so it completes exactly once.
    /// </summary>
    public CompletionEntry Finish(Operation operation)
    {
        operation.Owner.SideOf(operation).Remove(operation);
        CompletionEntry entry = operation.ToEntry(operation.PooledBuffer?.Lend() ?? 0);
        _table.Return(operation);
        return entry;
    }

    /// <summary>Ends an operation that never reached (or left) the kernel with OperationAborted; see <see cref="Finish"/>.</summary>
    public CompletionEntry FinishAborted(Operation operation)
    {
        operation.Error = SocketError.OperationAborted;
        return Finish(operation);
    }

    /// <summary>
    /// Ends an association (its socket was disposed, or is about to be, or the user dissociates it): its operations
    /// complete with OperationAborted, unless they finish first, and the engine lets go of the socket.
    /// </summary>
    public void EndAssociation(Association association)
    {
        CompletionSink sink = new([], _port.Engine);
        lock (association)
        {
            if (!association.TryMarkRemoved())
            {
                return;
            }

            Cancel(ref association.ReceiveSide, null, ref sink);
            Cancel(ref association.SendSide, null, ref sink);
        }

        try
        {
            _port.Engine.Dissociate(association);
        }
        finally
        {
            _port.Registrations.Free(association); // Ended either way: the slot and the socket's entry must not leak.
        }
    }

    /// <summary>Joins the process's sweeper, once, when the port gets its first association.</summary>
    public void JoinSweeper()
    {
        if (Volatile.Read(ref _swept))
        {
            return;
        }

        lock (_sweepGate)
        {
            if (!_swept && !_port.Lifetime.IsDisposed)
            {
                PortSweeper.Add(this);
                Volatile.Write(ref _swept, true);
            }
        }
    }

    /// <summary>Leaves the sweeper (port disposal).</summary>
    public void LeaveSweeper()
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
    /// Runs every <see cref="PortSweeper.Period"/> once the port has associations: ends the associations of disposed
    /// sockets among the next <see cref="SweepBudget"/> (so a plain dispose is noticed within one period per
    /// <see cref="SweepBudget"/> associations), and submits a batch that a thread which then stopped dequeuing left behind.
    /// </summary>
    public void Sweep()
    {
        if (!_port.Lifetime.TryEnter())
        {
            return;
        }

        try
        {
            _port.Engine.Flush();
            lock (_sweepGate)
            {
                _port.Registrations.CollectClosedAssociations(_closedScratch, ref _sweepCursor, SweepBudget);
                foreach (Association association in _closedScratch)
                {
                    EndAssociation(association);
                }

                _closedScratch.Clear();
            }
        }
        finally
        {
            _port.Lifetime.Exit();
        }
    }

    /// <summary>Port teardown: frees the operations' native memory, unless the kernel may still hold some of it.</summary>
    public void ReleaseMemory(bool kernelReleasedEverything)
    {
        if (kernelReleasedEverything)
        {
            _table.FreeNativeMemory();
        }
    }

    /// <summary>
    /// Cancels the operations of one side with <paramref name="context"/> (all for null): pending and parked ones end
    /// here, the engine asks the kernel for those it holds. Under the association's lock.
    /// </summary>
    private bool Cancel(ref OperationList side, object? context, ref CompletionSink sink)
    {
        bool cancelled = false;
        Operation? operation = side.Head;
        while (operation is not null)
        {
            Operation? next = operation.Next; // Cancelling may finish it and recycle it.
            if ((context is null || ReferenceEquals(operation.Context, context)) && operation.State != OperationState.InKernelCancelling)
            {
                cancelled = true;
                if (operation.State == OperationState.InKernel)
                {
                    if (_port.Engine.Cancel(operation))
                    {
                        operation.State = OperationState.InKernelCancelling;
                    }
                }
                else
                {
                    sink.Add(FinishAborted(operation)); // Not in the kernel: end it here.
                }
            }

            operation = next;
        }

        if (cancelled)
        {
            _port.Engine.Advance(ref side, ref sink); // The new first operation proceeds, in start order.
        }

        return cancelled;
    }

    /// <summary>Puts the operation on its association's list and hands it to the engine.</summary>
    private SocketError Launch(Operation operation)
    {
        Association owner = operation.Owner;
        CompletionSink sink = new([], _port.Engine);
        lock (owner)
        {
            if (owner.IsRemoved)
            {
                _table.Return(operation); // The socket was closed since it was looked up.
                return SocketError.OperationAborted;
            }

            owner.SideOf(operation).Add(operation);
            SocketError started = _port.Engine.Start(operation, ref sink);
            if (started != SocketError.IOPending)
            {
                owner.SideOf(operation).Remove(operation);
                _table.Return(operation);
                return started;
            }
        }

        _port.Engine.SubmitStarted();
        return SocketError.IOPending;
    }

    private static unsafe void SetAddress(Operation operation, SocketAddress address)
    {
        address.Buffer.Span[..address.Size].CopyTo(new Span<byte>(operation.AddressBuffer, address.Size));
        operation.AddressLength = address.Size;
    }
}
