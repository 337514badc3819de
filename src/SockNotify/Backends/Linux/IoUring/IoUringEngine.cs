using System.ComponentModel;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using SockNotify.Internal;
using static SockNotify.Interop;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// The Linux engine with overlapped operations in io_uring. One ring per port, shared by every thread; the parts
/// follow liburing's files: <see cref="Ring"/> (setup and mapping), <see cref="SubmissionQueue"/>,
/// <see cref="CompletionQueue"/>, <see cref="ProvidedBufferRing"/> (a registration), <see cref="Prep"/> (one
/// preparation per opcode), and the multishot accept in <c>IoUringEngine.Accept.cs</c>.
/// <list type="bullet">
/// <item><b>Who submits</b>: a starter writes its entry under the submission gate and publishes it. If some thread
/// sleeps in the port, the starter submits at once (<see cref="SubmitStarted"/>), unless it is itself handling entries
/// of this port: then its own next wait submits what it started, all in one enter; otherwise the entry waits for the
/// next waiter, whose wait submits everything pending first (the ready queue's sleeper count makes this race-free). The
/// port's sweep submits what a thread that stopped dequeuing left behind (within <see cref="PortSweeper.Period"/>).</item>
/// <item><b>Sockets</b> are named by descriptor; the submission queue holds each entry's socket open for the enter that
/// submits it and never reaches a socket closed before (<see cref="SubmissionQueue"/>). The ring keeps no socket open
/// otherwise: once the kernel's own requests on a socket end (cancelled by <see cref="CompletionPort.CloseSocket"/>,
/// or found by the sweep after a plain dispose), it closes, and an idle socket closes with its owner's dispose. No
/// fixed-file table: it cannot grow once registered, and reserving the descriptor limit costs megabytes of kernel
/// memory per port.</item>
/// <item><b>Waiting</b>: threads block in <c>epoll_wait</c>, as with notifications only. The port's wake eventfd is
/// registered with the ring, so the kernel signals it whenever it posts completions; a waiter first submits what is
/// pending and does not block while completions wait. So a port used only for notifications pays nothing for io_uring,
/// and one used for operations makes at most two system calls per batch: one submit, one wait (and a busy loop looks
/// at epoll only every other batch).</item>
/// <item><b>Order</b>: one operation per side of a socket is in the kernel at a time, the next submitted when it
/// completes, so the kernel cannot interleave two sends that go in parts.</item>
/// <item><b>Completion</b>: any thread reaps, in the kernel's order, under the completion gate. The ring never drops
/// completions (IORING_FEAT_NODROP); when the kernel had to hold some back, the next wait asks for them.</item>
/// <item><b>Pooled receives</b> select a buffer from the provided buffer ring. One that finds it empty is submitted again
/// to wait for data first, and only then, data waiting and no buffer, waits for a returned buffer.</item>
/// <item><b>User data</b>: an operation's token; with the top bit set, a listener's multishot accept (the rest is the
/// association's token); all ones, a cancel request, whose own completion is ignored.</item>
/// </list>
/// </summary>
internal sealed unsafe partial class IoUringEngine : LinuxEngine
{
    private const ulong CancelData = ulong.MaxValue;

    /// <summary><see cref="Operation.EngineFlags"/>: a pooled receive goes in polled first (see <see cref="Prep.ReceiveSelectBuffer"/>).</summary>
    private const byte PollFirst = 1;

    /// <summary>How long disposal waits for the kernel to let go of cancelled operations.</summary>
    private static readonly TimeSpan QuiesceTimeout = TimeSpan.FromSeconds(5);

    private readonly Ring _ring;
    private readonly SubmissionQueue _submissions;
    private readonly CompletionQueue _completions;
    private readonly ProvidedBufferRing _bufferRing;
    private readonly int _bufferSize;

    /// <summary>Whether the last wait looked at epoll (a hint; races between threads are harmless).</summary>
    private bool _epollPolledLast;

    /// <summary>Requests the kernel holds (submitted or written, not yet reaped); disposal waits for them.</summary>
    private int _inKernel;

    private bool _disposing;
    private bool _drained;

    private IoUringEngine(PortCore port, CompletionPortOptions options, EpollSelector epoll, Ring ring, ProvidedBufferRing bufferRing)
        : base(port, options, epoll)
    {
        _ring = ring;
        _submissions = ring.Submissions;
        _completions = ring.Completions;
        _bufferRing = bufferRing;
        _bufferSize = options.PooledBufferSize;
    }

    public override CompletionPortBackend Backend => CompletionPortBackend.IoUring;

    /// <summary>The ring's descriptor (tests aim injected faults at it).</summary>
    internal int RingDescriptor => _ring.Fd;

    public override bool HasFreeBuffer => _bufferRing.HasFree;

    public override bool ReleasedEverything => _drained;

    // The kernel's overflow list counts too: a waiter that reaped the ring empty must still wake a sleeper for those.
    protected override bool CompletionsWaiting => _completions.HasEntries || _submissions.CompletionsOverflowed;

    /// <summary>
    /// Sets up a ring with its registrations, or says why not (the kernel refused io_uring or lacks a feature this
    /// engine needs), so that the port can fall back to epoll.
    /// </summary>
    public static bool TryCreate(PortCore port, EpollSelector epoll, CompletionPortOptions options,
        [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out IoUringEngine? engine, out string? refusal)
    {
        engine = null;
        if (!Ring.TryCreate(options.RingSubmissionEntries, options.RingCompletionEntries, out Ring? ring, out refusal))
        {
            return false;
        }

        ProvidedBufferRing? bufferRing = null;
        try
        {
            int wakeEvent = epoll.WakeDescriptor;
            // SAFETY: the kernel reads the one descriptor during the call only.
            if (ring!.Register(IORING_REGISTER_EVENTFD, &wakeEvent, 1) < 0)
            {
                refusal = $"registering the wake eventfd failed: {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
                return false;
            }

            bufferRing = ProvidedBufferRing.TryRegister(ring, options.PooledBufferCount, out refusal);
            if (bufferRing is null)
            {
                return false;
            }

            engine = new IoUringEngine(port, options, epoll, ring, bufferRing);
            return true;
        }
        finally
        {
            if (engine is null)
            {
                ring!.Dispose(); // The kernel drops the buffer ring's registration with the ring: free it after.
                bufferRing?.Free();
            }
        }
    }

    // Nothing to prepare: entries name the socket's descriptor while they hold it.
    public override SocketNotifyResult Associate(Association association) => SocketNotifyResult.Success;

    // The cancels of its operations (queued under its lock) and every entry that names it go into the kernel now, so
    // that nothing of the ring's holds the socket once its owner closes it.
    public override void Dissociate(Association association)
    {
        lock (association)
        {
            if (association.EngineState is IoUringSocketState { AcceptArmed: true } state)
            {
                CancelMultishotAccept(association, state);
            }

            CloseBacklog(association);
        }

        uint tail;
        lock (_submissions.Gate)
        {
            tail = _submissions.Tail;
        }

        _submissions.SubmitUntil(tail);
    }

    public override SocketError Start(Operation operation, ref CompletionSink sink)
    {
        if (operation.Kind == OperationKind.Accept)
        {
            return StartAccept(operation, ref sink);
        }

        // One operation per side in the kernel at a time, as the epoll engine and Winsock keep them: two sends in
        // the kernel at once could interleave their bytes when the first one goes in parts.
        return FirstInKernelOrder(operation.Owner.SideOf(operation)) == operation ? Submit(operation) : SocketError.IOPending;
    }

    public override void Advance(ref OperationList side, ref CompletionSink sink)
    {
        if (_disposing)
        {
            return; // Disposal cancelled everything in the kernel: nothing new may go in after it.
        }

        while (FirstInKernelOrder(side) is { State: OperationState.Pending } next)
        {
            SocketError submitted = Submit(next);
            if (submitted == SocketError.IOPending)
            {
                return;
            }

            // The port is being disposed, or the ring stayed full: fail it rather than stall the side.
            next.Error = submitted;
            sink.Add(Port.Operations.Finish(next));
        }
    }

    // The resumed receive is its side's first in kernel order, so Advance submits it, or fails it and goes on to the
    // operations behind it.
    public override void Resume(Operation operation, ref CompletionSink sink)
    {
        SlotToken use = operation.Token;
        Advance(ref operation.Owner.SideOf(operation), ref sink);
        if (operation.Token != use || operation.State != OperationState.InKernel)
        {
            Port.Operations.Parked.OnBufferReturned(); // It did not go in: the buffer that resumed it is still free.
        }
    }

    public override bool Cancel(Operation operation) => RequestCancel(operation.Token.Value);

    public override void SubmitStarted()
    {
        // A sleeping thread will not submit what this one wrote: submit now, unless this thread handles entries of this
        // port and will wait again, submitting all it started in one enter (so batching survives several dequeuing
        // threads, one of them asleep; the sweep submits what a thread that stops dequeuing left). Otherwise the next
        // waiter does (it counts itself a sleeper before it reads the submission queue; the fence orders the entry's
        // publication before the read).
        Interlocked.MemoryBarrier();
        if (Queue.HasSleepers && !CallerWillWaitAgain)
        {
            Flush();
        }
    }

    // Never throws: the entries it could not submit stay published, and the next wait submits them or reports a
    // ring the kernel refuses (a start or cancel that already took effect must not throw to its caller).
    public override void Flush()
    {
        try
        {
            _submissions.Submit();
        }
        catch (Win32Exception)
        {
        }
    }

    public override void ReturnBuffer(PooledBuffer buffer) => _bufferRing.Add(buffer);

    // Cancels whatever the kernel still holds and waits for it, so that no pinned buffer, native structure or pooled
    // buffer is written by the kernel after the port's Dispose returns. Socket operations cancel at once; the wait is
    // bounded (QuiesceTimeout) for a kernel that holds on, and then the memory is leaked rather than reused.
    public override void Quiesce(List<Association> ended)
    {
        lock (_submissions.Gate)
        {
            _disposing = true; // Under the gate: every entry written before is cancelled below, none is written after.
        }

        bool cancelQueued = false;
        CompletionEntry[] discarded = new CompletionEntry[64];
        long deadline = Stopwatch.GetTimestamp() + (long)(Stopwatch.Frequency * QuiesceTimeout.TotalSeconds);
        KernelTimespec pause = new() { Nanoseconds = 10_000_000 };
        // SAFETY: the kernel reads the timespec through this pointer during each call only.
        GetEventsArgument argument = new() { Timespec = (ulong)&pause };
        while (Volatile.Read(ref _inKernel) > 0 && Stopwatch.GetTimestamp() < deadline)
        {
            // Retried until it fits: a full submission queue frees up as the kernel consumes it.
            cancelQueued = cancelQueued || RequestCancel(null);
            // Submitted first, then waited for with nothing to submit: an enter holds the sockets of what it submits (see
            // SubmissionQueue), and a socket's owner closing it meanwhile should not have to wait out the pause.
            _submissions.Submit();
            _submissions.Enter(0, 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &argument);
            CompletionSink sink = new(discarded, this);
            Reap(ref sink, sink.Room);
            foreach (CompletionEntry entry in discarded.AsSpan(0, sink.Count))
            {
                entry.DropUndelivered();
            }
        }

        // Connections held for Accepts no one will start: the listeners disposal ended hold them (those ended before
        // closed theirs in Dissociate).
        foreach (Association listener in ended)
        {
            lock (listener)
            {
                CloseBacklog(listener);
            }
        }

        _drained = Volatile.Read(ref _inKernel) == 0;
    }

    public override void Dispose()
    {
        _ring.Dispose();
        if (_drained)
        {
            // Otherwise the kernel may still hold some: leaking this memory is better than letting it be reused.
            _bufferRing.Free();
            CreatedBuffers?.Dispose();
        }

        base.Dispose();
    }

    protected override void OnPoolCreated(BufferPool pool)
    {
        for (int id = 0; id < pool.Count; id++)
        {
            _bufferRing.Add(pool[id]);
        }
    }

    protected override int WaitForEvents(Span<ReadyEvent> ready, int timeoutMilliseconds)
    {
        uint toSubmit = _submissions.Pending;
        // GETEVENTS with no minimum runs the operations' deferred kernel work and moves completions the kernel held
        // back into the ring.
        bool kernelWork = _submissions.KernelWorkPending;
        if (toSubmit > 0 || kernelWork)
        {
            _submissions.Enter(toSubmit, 0, kernelWork ? IORING_ENTER_GETEVENTS : 0, null);
        }

        bool completionsWaiting = _completions.HasEntries;
        if (completionsWaiting && _epollPolledLast)
        {
            // Busy with completions: look at epoll every other time, which halves the system calls of a busy loop
            // and delays notifications and posts by one batch at most.
            _epollPolledLast = false;
            return 0;
        }

        _epollPolledLast = true;
        return Epoll.Wait(ready, completionsWaiting ? 0 : timeoutMilliseconds);
    }

    public override void CloseSocket(System.Net.Sockets.Socket socket) => _submissions.CloseBetweenEnters(socket);

    // Associated sockets are never in the epoll set with this engine.
    protected override void OnAssociationReady(Association association, SocketNotifyEvents events, ref CompletionSink sink)
    {
    }

    protected override void Reap(ref CompletionSink sink, int max)
    {
        if (max == 0)
        {
            return;
        }

        // Completions are handled in the kernel's order, under the gate: a multishot accept's last completion must not
        // overtake its earlier ones.
        lock (_completions.Gate)
        {
            uint count = _completions.Peek(max, out uint head);
            uint consumed = 0;
            try
            {
                while (consumed < count)
                {
                    // Counted before it is handled: an entry whose handling throws is consumed, never handled twice (a
                    // multishot accept handled twice would give two sockets one descriptor).
                    Complete(_completions[head + consumed++], ref sink);
                    _ = Faults.Ask(Faults.Call.HandleCompletion, _ring.Fd); // Tests make it throw here.
                }
            }
            finally
            {
                _completions.Advance(head, consumed);
            }
        }

        // Handling completions writes entries (a side's next operation, a re-armed accept): a sleeping thread will not
        // submit them, so submit now if one sleeps, as a start does; otherwise this thread's next wait does.
        if (_submissions.Pending > 0)
        {
            SubmitStarted();
        }
    }

    /// <summary>The side's first operation that goes to the kernel in turn (Accepts wait for the multishot accept instead).</summary>
    private static Operation? FirstInKernelOrder(in OperationList side)
    {
        for (Operation? operation = side.Head; operation is not null; operation = operation.Next)
        {
            if (operation.Kind != OperationKind.Accept)
            {
                return operation;
            }
        }

        return null;
    }

    /// <summary>Writes the operation's entry and moves it <see cref="OperationState.InKernel"/>. Under the association's lock.</summary>
    private SocketError Submit(Operation operation)
    {
        lock (_submissions.Gate)
        {
            if (_disposing)
            {
                return SocketError.OperationAborted; // Disposal cancelled everything in the kernel: nothing goes in after.
            }

            SubmissionEntry* entry = _submissions.NextEntry();
            if (entry is null)
            {
                return SocketError.NoBufferSpaceAvailable;
            }

            SafeSocketHandle socket = operation.Owner.Handle;
            Prepare(operation, entry, (int)socket.DangerousGetHandle()); // Checked again, held, when submitted.
            // Counted before it is published, under the gate: disposal, which sets _disposing under it too, then either
            // refused this entry or finds it counted and waits for it.
            Interlocked.Increment(ref _inKernel);
            _submissions.Publish(socket);
        }

        operation.State = OperationState.InKernel;
        return SocketError.IOPending;
    }

    private void Prepare(Operation operation, SubmissionEntry* entry, int fd)
    {
        ulong data = operation.Token.Value;
        switch (operation.Kind)
        {
            case OperationKind.Connect:
                Prep.Connect(entry, fd, operation.AddressBuffer, operation.AddressLength, data);
                break;
            case OperationKind.Receive when operation.Length == 0:
                // Waits for data as Winsock's zero-byte receive does: a one-byte peek into scratch memory (see Complete).
                Prep.Receive(entry, fd, operation.AddressBuffer, 1, operation.MessageFlags | Interop.Socket.MSG_PEEK, data);
                break;
            case OperationKind.Receive:
                Prep.Receive(entry, fd, operation.Buffer, operation.Length, operation.MessageFlags, data);
                break;
            case OperationKind.ReceivePooled:
                Prep.ReceiveSelectBuffer(entry, fd, ProvidedBufferRing.Group, _bufferSize, operation.MessageFlags,
                    (operation.EngineFlags & PollFirst) != 0, data);
                break;
            case OperationKind.ReceiveMessage:
                Prep.ReceiveMessage(entry, fd, operation.Message, operation.MessageFlags, data);
                break;
            case OperationKind.Send:
                Prep.Send(entry, fd, operation.Buffer, operation.Length, operation.MessageFlags, data);
                break;
            case OperationKind.SendMessage:
                Prep.SendMessage(entry, fd, operation.Message, operation.MessageFlags, data);
                break;
            default:
                throw new UnreachableException($"{operation.Kind} is not submitted on its own.");
        }
    }

    /// <summary>
    /// Asks the kernel to cancel the request with <paramref name="target"/> as its user data, or every request of the
    /// ring for null; false when the ring stayed full (cancellation is a request: the operation still completes on its own).
    /// </summary>
    private bool RequestCancel(ulong? target)
    {
        lock (_submissions.Gate)
        {
            SubmissionEntry* entry = _submissions.NextEntry();
            if (entry is null)
            {
                return false;
            }

            if (target is { } userData)
            {
                Prep.Cancel(entry, userData, CancelData);
            }
            else
            {
                Prep.CancelAll(entry, CancelData);
            }

            _submissions.Publish(null);
            return true;
        }
    }

    private void Complete(in CompletionQueueEntry completion, ref CompletionSink sink)
    {
        if (completion.UserData == CancelData)
        {
            return;
        }

        if ((completion.UserData & SlotToken.EngineBit) != 0)
        {
            CompleteMultishotAccept(completion, ref sink);
            return;
        }

        Operation? operation = Port.Operations.Find(new SlotToken(completion.UserData));
        if (operation is null)
        {
            Debug.Fail("A completion for no operation.");
            return;
        }

        PooledBuffer? selected = null;
        if ((completion.Flags & IORING_CQE_F_BUFFER) != 0)
        {
            _bufferRing.Took();
            selected = Buffers[(int)(completion.Flags >> IORING_CQE_BUFFER_SHIFT)];
        }

        Interlocked.Decrement(ref _inKernel);
        Association owner = operation.Owner;
        lock (owner)
        {
            bool cancelling = operation.State == OperationState.InKernelCancelling;
            operation.State = OperationState.Pending;
            ref OperationList side = ref owner.SideOf(operation);
            int result = completion.Result;
            if (result == -(int)Errno.ECANCELED && !cancelling && !owner.IsRemoved && !_disposing)
            {
                // Nobody asked: the kernel ends a request whose submitting thread has exited when it next makes progress,
                // and any thread that dequeues submits operations others started. Still the caller's: submit it again.
                if (selected is not null)
                {
                    _bufferRing.Add(selected); // The kernel recycles a cancelled request's buffer; should it name one, it goes back.
                    selected = null;
                }

                SocketError resubmitted = Submit(operation);
                if (resubmitted == SocketError.IOPending)
                {
                    return;
                }

                operation.Error = resubmitted;
            }

            if (operation.Kind == OperationKind.ReceivePooled && result == -(int)Errno.ENOBUFS)
            {
                if (!cancelling && !owner.IsRemoved && !_disposing)
                {
                    if ((operation.EngineFlags & PollFirst) != 0)
                    {
                        Port.Operations.Parked.Park(operation); // Data is waiting: it waits for a buffer.
                        return;
                    }

                    // Tried at once and found no buffer, perhaps with no data either: wait for data in the kernel first,
                    // so that only receives with data wait for a buffer (a returned buffer goes to one that takes it).
                    operation.EngineFlags |= PollFirst;
                    SocketError resubmitted = Submit(operation);
                    if (resubmitted == SocketError.IOPending)
                    {
                        return;
                    }

                    operation.Error = resubmitted;
                }
                else
                {
                    result = -(int)Errno.ECANCELED; // Cancelled while the kernel found no buffer: it must not wait for one.
                }
            }

            if (selected is not null)
            {
                if (result > 0)
                {
                    operation.PooledBuffer = selected;
                }
                else
                {
                    _bufferRing.Add(selected); // End of stream or an error: nothing to lend.
                }
            }

            if (operation.Kind == OperationKind.ReceivePooled && operation.PooledBuffer is null)
            {
                // Ended without keeping a buffer: if a returned buffer resumed it, that buffer must go to the next one.
                Port.Operations.Parked.OnBufferReturned();
            }

            if (result < 0)
            {
                if (operation.Error == SocketError.Success) // Else a resubmission above failed: that is the result.
                {
                    operation.Error = ToSocketError((Errno)(-result));
                }
            }
            else if (operation.Kind is OperationKind.Send or OperationKind.SendMessage)
            {
                if (operation.ConsumeSent(result))
                {
                    // MSG_WAITALL makes the kernel send every byte, but a send it cancels after some went ends with their
                    // count, not ECANCELED: if nobody asked (its submitting thread exited, say) the rest goes in again,
                    // and a send that stops short reports why, as on epoll (the count says how much went).
                    bool asked = cancelling || owner.IsRemoved || _disposing;
                    SocketError rest = asked ? SocketError.OperationAborted
                        : result == 0 ? SocketError.SocketError : Submit(operation);
                    if (rest == SocketError.IOPending)
                    {
                        return;
                    }

                    operation.Error = rest;
                }
            }
            else if (operation.Kind != OperationKind.Connect)
            {
                // A zero-byte receive's one-byte peek transfers nothing.
                operation.Transferred = operation.Kind == OperationKind.Receive && operation.Length == 0 ? 0 : result;
            }

            sink.Add(Port.Operations.Finish(operation));
            Advance(ref side, ref sink);
        }
    }
}
