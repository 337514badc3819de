using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using SockNotify.Backends.Epoll;
using SockNotify.Internal;
using static SockNotify.Interop;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.IoUring;

/// <summary>
/// Overlapped operations over io_uring. One ring per port, shared by every thread:
/// <list type="bullet">
/// <item>Submission: a thread writes its entry under <see cref="_submitGate"/> and publishes the tail. If some thread
/// sleeps in the port, the starter submits at once; otherwise the entry waits for the next waiter, whose
/// <c>io_uring_enter</c> submits everything pending and waits in one call (the port's sleeper count makes this
/// race-free), and the port's sweep submits what a thread that stopped dequeuing left behind.</item>
/// <item>Sockets are installed in the ring's fixed-file table at the association's slot, so an entry written now and
/// submitted later can never reach another socket that reused the descriptor number, and a socket the user disposes
/// stays alive until the port has cancelled its operations (then it closes normally).</item>
/// <item>Waiting: threads block in <c>epoll_wait</c>, as with notifications only. The port's wake eventfd is registered
/// with the ring, so the kernel signals it whenever it posts completions; a waiter first submits what is pending and
/// does not block while completions wait. So a port used only for notifications pays nothing for io_uring, and one
/// used for operations makes at most two system calls per batch: one submit, one wait (and a busy loop looks at
/// epoll only every other batch).</item>
/// <item>Order: one operation per side of a socket is in the kernel at a time, the next submitted when it completes,
/// so the kernel cannot interleave two sends that go in parts.</item>
/// <item>Completion: any thread reaps, in the kernel's order, under <see cref="_reapGate"/>. The ring never drops
/// completions (IORING_FEAT_NODROP); when the kernel had to hold some back, the next wait asks for them.</item>
/// <item>Pooled receives select a buffer from a provided buffer ring when data arrives.</item>
/// <item>Accept operations are served by one multishot accept per listener, armed while any Accept waits; a
/// connection that arrives with none waiting is held (up to <see cref="MaxAcceptBacklog"/>) for the next one.</item>
/// </list>
/// </summary>
internal sealed unsafe class IoUringOperations : IOperationBackend
{
    private const ulong InternalData = 1UL << 63;
    private const ulong CancelData = InternalData | 2;
    private const ushort PooledBufferGroup = 0;

    /// <summary>Connections a listener's multishot accept may hold for Accept operations not yet started.</summary>
    private const int MaxAcceptBacklog = 64;

    private readonly CompletionPort _port;
    private readonly EpollBackend _epoll;
    private readonly SafeFileDescriptorHandle _ring;
    private readonly int _ringFd;
    private readonly byte* _rings;
    private readonly nuint _ringsSize;
    private readonly SubmissionEntry* _sqes;
    private readonly nuint _sqesSize;
    private readonly uint* _sqHead;
    private readonly uint* _sqTail;
    private readonly uint* _sqFlags;
    private readonly uint _sqMask;
    private readonly uint _sqEntries;
    private readonly uint* _cqHead;
    private readonly uint* _cqTail;
    private readonly uint _cqMask;
    private readonly CompletionQueueEntry* _cqes;
    private readonly uint _fixedFiles;
    private readonly Lock _submitGate = new();
    private readonly Lock _reapGate = new();

    private readonly int _bufferSize;
    private readonly int _bufferCount;
    private readonly ProvidedBuffer* _bufferRing;
    private readonly Lock _buffersGate = new();
    private BufferPool? _buffers;
    private ushort _bufferRingTail;
    private int _buffersInRing;

    /// <summary>Whether the last wait looked at epoll (a hint; races between threads are harmless).</summary>
    private bool _epollPolledLast;

    /// <summary>Operations the kernel holds (submitted or written, not yet reaped); disposal waits for them.</summary>
    private int _inKernel;

    private bool _disposing;
    private bool _drained;

    /// <summary>Listeners that armed a multishot accept, whose held connections disposal must close.</summary>
    private readonly ConcurrentDictionary<Association, byte> _listeners = new();

    private IoUringOperations(CompletionPort port, EpollBackend epoll, int ringFd, in Parameters parameters,
        byte* rings, nuint ringsSize, SubmissionEntry* sqes, nuint sqesSize, uint fixedFiles,
        ProvidedBuffer* bufferRing, int bufferSize, int bufferCount)
    {
        _port = port;
        _epoll = epoll;
        _ring = new SafeFileDescriptorHandle(ringFd);
        _ringFd = ringFd;
        _rings = rings;
        _ringsSize = ringsSize;
        _sqes = sqes;
        _sqesSize = sqesSize;
        _sqHead = (uint*)(rings + parameters.SqOffsets.Head);
        _sqTail = (uint*)(rings + parameters.SqOffsets.Tail);
        _sqFlags = (uint*)(rings + parameters.SqOffsets.Flags);
        _sqMask = *(uint*)(rings + parameters.SqOffsets.RingMask);
        _sqEntries = parameters.SqEntries;
        _cqHead = (uint*)(rings + parameters.CqOffsets.Head);
        _cqTail = (uint*)(rings + parameters.CqOffsets.Tail);
        _cqMask = *(uint*)(rings + parameters.CqOffsets.RingMask);
        _cqes = (CompletionQueueEntry*)(rings + parameters.CqOffsets.Cqes);
        _fixedFiles = fixedFiles;
        _bufferRing = bufferRing;
        _bufferSize = bufferSize;
        _bufferCount = bufferCount;

        // Entries are used in ring order, so the indirection array is the identity.
        uint* array = (uint*)(rings + parameters.SqOffsets.Array);
        for (uint i = 0; i < _sqEntries; i++)
        {
            array[i] = i;
        }

    }

    public BufferPool Buffers
    {
        get
        {
            if (Volatile.Read(ref _buffers) is { } buffers)
            {
                return buffers;
            }

            lock (_buffersGate)
            {
                if (_buffers is null)
                {
                    BufferPool pool = new(_port, _bufferSize, _bufferCount);
                    for (int id = 0; id < pool.Count; id++)
                    {
                        AddToBufferRing(pool[id]);
                    }

                    Volatile.Write(ref _buffers, pool);
                }

                return _buffers;
            }
        }
    }

    public bool HasFreeBuffer => Volatile.Read(ref _buffersInRing) > 0;

    /// <summary>
    /// Sets up a ring, or says why not (the kernel refused io_uring or lacks a feature this backend needs), so that
    /// the port can fall back to epoll.
    /// </summary>
    public static bool TryCreate(CompletionPort port, EpollBackend epoll, int bufferSize, int bufferCount, uint submissionEntries,
        uint completionEntries, out IoUringOperations? operations, out string? refusal)
    {
        operations = null;
        Parameters parameters = new()
        {
            // Cooperative task running: the kernel does not interrupt a busy thread to finish its operations, but flags
            // them (IORING_SQ_TASKRUN) for the thread's next wait to run. Measured with the bench (1,000 connections,
            // three rounds): 1.24x the C baseline's CPU per message with it, 1.35x without.
            Flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
            CqEntries = completionEntries,
        };
        int ringFd = Setup(submissionEntries, &parameters);
        if (ringFd < 0)
        {
            refusal = $"io_uring_setup failed: {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
            return false;
        }

        const uint needed = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG;
        byte* rings = null;
        nuint ringsSize = 0;
        SubmissionEntry* sqes = null;
        nuint sqesSize = 0;
        ProvidedBuffer* bufferRing = null;
        try
        {
            if ((parameters.Features & needed) != needed)
            {
                refusal = "the kernel's io_uring lacks single mmap, no-drop completions or extended wait arguments (Linux 5.11+).";
                return false;
            }

            ringsSize = Math.Max(
                parameters.SqOffsets.Array + (parameters.SqEntries * sizeof(uint)),
                parameters.CqOffsets.Cqes + (parameters.CqEntries * (nuint)sizeof(CompletionQueueEntry)));
            rings = (byte*)Interop.Memory.Map(null, ringsSize, Interop.Memory.PROT_READ | Interop.Memory.PROT_WRITE,
                Interop.Memory.MAP_SHARED | Interop.Memory.MAP_POPULATE, ringFd, IORING_OFF_SQ_RING);
            sqesSize = parameters.SqEntries * (nuint)sizeof(SubmissionEntry);
            sqes = (SubmissionEntry*)Interop.Memory.Map(null, sqesSize, Interop.Memory.PROT_READ | Interop.Memory.PROT_WRITE,
                Interop.Memory.MAP_SHARED | Interop.Memory.MAP_POPULATE, ringFd, IORING_OFF_SQES);
            if (rings == (byte*)-1 || sqes == (SubmissionEntry*)-1)
            {
                refusal = $"mmap of the rings failed: {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
                rings = rings == (byte*)-1 ? null : rings;
                sqes = sqes == (SubmissionEntry*)-1 ? null : sqes;
                return false;
            }

            uint fixedFiles = FixedFileTableSize();
            ResourceRegistration files = new() { Count = fixedFiles, Flags = IORING_RSRC_REGISTER_SPARSE };
            if (Register(ringFd, IORING_REGISTER_FILES2, &files, (uint)sizeof(ResourceRegistration)) < 0)
            {
                refusal = $"registering a sparse file table failed (Linux 5.19+): {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
                return false;
            }

            nuint bufferRingSize = (nuint)bufferCount * (nuint)sizeof(ProvidedBuffer);
            bufferRing = (ProvidedBuffer*)NativeMemory.AlignedAlloc(bufferRingSize, (nuint)Environment.SystemPageSize);
            NativeMemory.Clear(bufferRing, bufferRingSize);
            int wakeEvent = epoll.WakeDescriptor;
            if (Register(ringFd, IORING_REGISTER_EVENTFD, &wakeEvent, 1) < 0)
            {
                refusal = $"registering the wake eventfd failed: {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
                return false;
            }

            BufferRingRegistration registration = new() { RingAddress = (ulong)bufferRing, RingEntries = (uint)bufferCount, GroupId = PooledBufferGroup };
            if (Register(ringFd, IORING_REGISTER_PBUF_RING, &registration, 1) < 0)
            {
                refusal = $"registering a provided buffer ring failed (Linux 5.19+): {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
                return false;
            }

            operations = new IoUringOperations(port, epoll, ringFd, parameters, rings, ringsSize, sqes, sqesSize, fixedFiles,
                bufferRing, bufferSize, bufferCount);
            refusal = null;
            return true;
        }
        finally
        {
            if (operations is null)
            {
                if (rings is not null)
                {
                    Interop.Memory.Unmap(rings, ringsSize);
                }

                if (sqes is not null)
                {
                    Interop.Memory.Unmap(sqes, sqesSize);
                }

                Interop.Close(ringFd); // The kernel drops the buffer ring's registration with the ring.
                NativeMemory.AlignedFree(bufferRing);
            }
        }
    }

    public SocketNotifyResult Associate(Association association)
    {
        if ((uint)association.Slot >= _fixedFiles)
        {
            return SocketNotifyResult.InsufficientResources;
        }

        bool added = false;
        try
        {
            association.Handle.DangerousAddRef(ref added);
            int fd = (int)association.Handle.DangerousGetHandle();
            return UpdateFixedFile(association.Slot, fd) ? SocketNotifyResult.Success : SocketNotifyResult.SystemError;
        }
        catch (ObjectDisposedException)
        {
            return SocketNotifyResult.SocketClosed;
        }
        finally
        {
            if (added)
            {
                association.Handle.DangerousRelease();
            }
        }
    }

    public void Dissociate(Association association)
    {
        lock (association)
        {
            if (association.MultishotAccept is { } multishot)
            {
                RequestCancel(multishot);
            }

            CloseBacklog(association);
        }

        _listeners.TryRemove(association, out _);
        Flush(); // Entries written for it must reach the kernel while its slot still names its socket.
        UpdateFixedFile(association.Slot, -1);
    }

    public SocketError Start(Operation operation, ref CompletionSink sink)
    {
        if (operation.Kind == OperationKind.Accept)
        {
            return StartAccept(operation, ref sink);
        }

        // One operation per side in the kernel at a time, as the epoll backend and Winsock keep them: two sends in
        // the kernel at once could interleave their bytes when the first one goes in parts.
        return FirstInKernelOrder(operation.Owner.SideOf(operation)) == operation ? Submit(operation) : SocketError.IOPending;
    }

    public void Advance(ref OperationList side, ref CompletionSink sink)
    {
        if (_disposing)
        {
            return; // Disposal cancelled everything in the kernel: nothing new may go in after it.
        }

        while (FirstInKernelOrder(side) is { Submitted: false, WaitingForBuffer: false } next)
        {
            if (Submit(next) == SocketError.IOPending)
            {
                return;
            }

            next.Error = SocketError.NoBufferSpaceAvailable; // The ring stayed full: fail it rather than stall the side.
            sink.Add(_port.Finish(next));
        }
    }

    public bool CompletionsWaiting => Volatile.Read(ref *_cqTail) != Volatile.Read(ref *_cqHead);

    public bool ReleasedEverything => _drained;

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

    private SocketError Submit(Operation operation)
    {
        lock (_submitGate)
        {
            SubmissionEntry* entry = NextEntry();
            if (entry is null)
            {
                return SocketError.NoBufferSpaceAvailable;
            }

            Prepare(operation, entry);
            Publish();
        }

        operation.Submitted = true;
        Interlocked.Increment(ref _inKernel);
        return SocketError.IOPending;
    }

    public void Resume(Operation operation, ref CompletionSink sink)
    {
        if (Submit(operation) != SocketError.IOPending)
        {
            operation.Error = SocketError.NoBufferSpaceAvailable;
            sink.Add(_port.Finish(operation));
        }
    }

    public void Cancel(Operation operation, ref CompletionSink sink)
    {
        if (!operation.Submitted)
        {
            // Not in the kernel: an Accept waits for the multishot accept, anything else behind its side's first.
            sink.Add(_port.FinishAborted(operation));
            return;
        }

        RequestCancel(operation);
    }

    private void RequestCancel(Operation operation)
    {
        lock (_submitGate)
        {
            SubmissionEntry* entry = NextEntry();
            if (entry is null)
            {
                return; // Cancellation is a request; the operation still completes on its own.
            }

            entry->Opcode = IORING_OP_ASYNC_CANCEL;
            entry->Fd = -1;
            entry->Address = operation.Token;
            entry->UserData = CancelData;
            Publish();
        }
    }

    public void OnReady(Association association, SocketNotifyEvents events, ref CompletionSink sink)
    {
        // Associated sockets are never in the epoll set with this backend.
    }

    public int Wait(Span<ReadyEvent> ready, int timeoutMilliseconds)
    {
        uint toSubmit = Pending();
        // GETEVENTS with no minimum runs the operations' deferred kernel work and moves completions the kernel held
        // back into the ring.
        bool kernelWork = (Volatile.Read(ref *_sqFlags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;
        if (toSubmit > 0 || kernelWork)
        {
            Enter(toSubmit, 0, kernelWork ? IORING_ENTER_GETEVENTS : 0, null);
        }

        bool completionsWaiting = Volatile.Read(ref *_cqTail) != Volatile.Read(ref *_cqHead);
        if (completionsWaiting && _epollPolledLast)
        {
            // Busy with completions: look at epoll every other time, which halves the system calls of a busy loop
            // and delays notifications and posts by one batch at most.
            _epollPolledLast = false;
            return 0;
        }

        _epollPolledLast = true;
        return _epoll.Wait(ready, completionsWaiting ? 0 : timeoutMilliseconds);
    }

    public void Reap(ref CompletionSink sink)
    {
        int room = sink.Room;
        if (room == 0)
        {
            return;
        }

        // Completions are handled in the kernel's order, under the gate: a multishot accept's last completion must not
        // overtake its earlier ones (it recycles the operation they name).
        lock (_reapGate)
        {
            uint head = *_cqHead;
            int count = (int)Math.Min(Volatile.Read(ref *_cqTail) - head, (uint)room);
            for (int i = 0; i < count; i++)
            {
                CompletionQueueEntry completion = _cqes[(head + (uint)i) & _cqMask];
                Complete(completion, ref sink);
            }

            Volatile.Write(ref *_cqHead, head + (uint)count);
        }
    }

    public void Flush()
    {
        uint toSubmit = Pending();
        if (toSubmit > 0)
        {
            Enter(toSubmit, 0, 0, null);
        }
    }

    public void ReturnBuffer(PooledBuffer buffer)
    {
        lock (_buffersGate)
        {
            AddToBufferRing(buffer);
        }
    }

    public void Dispose()
    {
        // Cancel whatever the kernel still holds and wait for it, so that no pinned buffer, native structure or pooled
        // buffer is released while the kernel may still write to it. Socket operations cancel at once.
        _disposing = true;
        lock (_submitGate)
        {
            SubmissionEntry* entry = NextEntry();
            if (entry is not null)
            {
                entry->Opcode = IORING_OP_ASYNC_CANCEL;
                entry->Fd = -1;
                entry->OpFlags = IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY;
                entry->UserData = CancelData;
                Publish();
            }
        }

        CompletionEntry[] discarded = new CompletionEntry[64];
        long deadline = Stopwatch.GetTimestamp() + (Stopwatch.Frequency * 5);
        KernelTimespec pause = new() { Nanoseconds = 10_000_000 };
        GetEventsArgument argument = new() { Timespec = (ulong)&pause };
        while (Volatile.Read(ref _inKernel) > 0 && Stopwatch.GetTimestamp() < deadline)
        {
            Enter(Pending(), 1, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &argument);
            CompletionSink sink = new(discarded, _port);
            Reap(ref sink);
            DisposeAccepted(discarded.AsSpan(0, sink.Count));
        }

        foreach (Association listener in _listeners.Keys)
        {
            lock (listener)
            {
                CloseBacklog(listener);
            }
        }

        _drained = Volatile.Read(ref _inKernel) == 0;
        Interop.Memory.Unmap(_sqes, _sqesSize);
        Interop.Memory.Unmap(_rings, _ringsSize);
        _ring.Dispose();
        if (_drained)
        {
            // Otherwise the kernel may still hold some: leaking this memory is better than letting it be reused.
            NativeMemory.AlignedFree(_bufferRing);
            _buffers?.Dispose();
        }
    }

    private static void DisposeAccepted(Span<CompletionEntry> entries)
    {
        foreach (CompletionEntry entry in entries)
        {
            entry.AcceptSocket?.Dispose();
        }
    }

    /// <summary>The fixed-file table holds at most the process's descriptor limit (the kernel's own bound).</summary>
    private static uint FixedFileTableSize()
    {
        Interop.Resources.Limit limit;
        uint size = Interop.Resources.GetLimit(Interop.Resources.RLIMIT_NOFILE, &limit) == 0 ? (uint)Math.Min(limit.Current, 1u << 20) : 1024;
        return Math.Max(size, 64);
    }

    private uint Pending() => Volatile.Read(ref *_sqTail) - Volatile.Read(ref *_sqHead);

    private void Enter(uint toSubmit, uint minComplete, uint flags, GetEventsArgument* argument)
    {
        nuint argumentSize = argument is null ? 0 : (nuint)sizeof(GetEventsArgument);
        if (Interop.IoUring.Enter(_ringFd, toSubmit, minComplete, flags, argument, argumentSize) >= 0)
        {
            return;
        }

        Errno errno = LastErrno();
        // Interrupted, timed out, or the kernel is busy flushing completions: the caller's loop comes back.
        if (errno is not (Errno.EINTR or Errno.ETIME or Errno.EBUSY or Errno.EAGAIN))
        {
            throw new System.ComponentModel.Win32Exception((int)errno, $"io_uring_enter failed: {Marshal.GetPInvokeErrorMessage((int)errno)}");
        }
    }

    /// <summary>The next free submission entry, zeroed, or null when the ring stays full. Called under the submit gate.</summary>
    private SubmissionEntry* NextEntry()
    {
        uint tail = *_sqTail;
        if (tail - Volatile.Read(ref *_sqHead) == _sqEntries)
        {
            Enter(_sqEntries, 0, 0, null); // Submitting frees the entries whatever the completion queue holds.
            if (tail - Volatile.Read(ref *_sqHead) == _sqEntries)
            {
                return null;
            }
        }

        SubmissionEntry* entry = &_sqes[tail & _sqMask];
        *entry = default;
        return entry;
    }

    private void Publish() => Volatile.Write(ref *_sqTail, *_sqTail + 1);

    private void Prepare(Operation operation, SubmissionEntry* entry)
    {
        entry->Fd = operation.Owner.Slot;
        entry->Flags = IOSQE_FIXED_FILE;
        entry->UserData = operation.Token;
        switch (operation.Kind)
        {
            case OperationKind.AcceptMultishot:
                entry->Opcode = IORING_OP_ACCEPT;
                entry->IoPriority = IORING_ACCEPT_MULTISHOT;
                entry->OpFlags = Interop.Socket.SOCK_NONBLOCK | Interop.Socket.SOCK_CLOEXEC;
                break;
            case OperationKind.Connect:
                entry->Opcode = IORING_OP_CONNECT;
                entry->Address = (ulong)operation.AddressBuffer;
                entry->Offset = (ulong)operation.AddressLength;
                break;
            case OperationKind.Receive:
                entry->Opcode = IORING_OP_RECV;
                entry->Address = (ulong)operation.Buffer;
                entry->Length = (uint)operation.Length;
                entry->OpFlags = (uint)operation.MessageFlags;
                break;
            case OperationKind.ReceivePooled:
                entry->Opcode = IORING_OP_RECV;
                entry->Flags |= IOSQE_BUFFER_SELECT;
                entry->BufferGroup = PooledBufferGroup;
                entry->Length = (uint)_bufferSize;
                entry->OpFlags = (uint)operation.MessageFlags;
                break;
            case OperationKind.ReceiveMessage:
                entry->Opcode = IORING_OP_RECVMSG;
                entry->Address = (ulong)operation.Message;
                entry->OpFlags = (uint)operation.MessageFlags;
                break;
            case OperationKind.Send:
                // MSG_WAITALL makes the kernel finish a partial stream send itself, as Winsock's send completes.
                entry->Opcode = IORING_OP_SEND;
                entry->Address = (ulong)operation.Buffer;
                entry->Length = (uint)operation.Length;
                entry->OpFlags = (uint)(operation.MessageFlags | Interop.Socket.MSG_WAITALL | Interop.Socket.MSG_NOSIGNAL);
                break;
            default:
                entry->Opcode = IORING_OP_SENDMSG;
                entry->Address = (ulong)operation.Message;
                entry->OpFlags = (uint)(operation.MessageFlags | Interop.Socket.MSG_WAITALL | Interop.Socket.MSG_NOSIGNAL);
                break;
        }
    }

    private void Complete(in CompletionQueueEntry completion, ref CompletionSink sink)
    {
        if (completion.UserData == CancelData)
        {
            return;
        }

        Operation? operation = _port.FindOperation(completion.UserData);
        if (operation is null)
        {
            Debug.Fail("A completion for no operation.");
            return;
        }

        if (operation.Kind == OperationKind.AcceptMultishot)
        {
            CompleteMultishotAccept(operation, completion, ref sink);
            return;
        }

        PooledBuffer? selected = (completion.Flags & IORING_CQE_F_BUFFER) != 0
            ? TakeSelectedBuffer((int)(completion.Flags >> IORING_CQE_BUFFER_SHIFT))
            : null;
        Interlocked.Decrement(ref _inKernel);
        Association owner = operation.Owner;
        lock (owner)
        {
            operation.Submitted = false;
            ref OperationList side = ref owner.SideOf(operation);
            int result = completion.Result;
            if (operation.Kind == OperationKind.ReceivePooled && result == -(int)Errno.ENOBUFS)
            {
                if (!operation.CancelRequested && !owner.IsRemoved && !_disposing)
                {
                    _port.ParkForBuffer(operation);
                    return;
                }

                result = -(int)Errno.ECANCELED; // Cancelled while the kernel found no buffer: it must not wait for one.
            }

            if (selected is not null)
            {
                if (result > 0)
                {
                    operation.PooledBuffer = selected;
                }
                else
                {
                    ReturnBuffer(selected); // End of stream or an error: nothing to lend.
                }
            }

            if (result < 0)
            {
                operation.Error = ToSocketError((Errno)(-result));
            }
            else if (operation.Kind != OperationKind.Connect)
            {
                operation.Transferred = result;
            }

            sink.Add(_port.Finish(operation));
            Advance(ref side, ref sink);
        }
    }

    /// <summary>Serves an Accept from the backlog, or waits for the multishot accept (arming it). Under the listener's lock.</summary>
    private SocketError StartAccept(Operation operation, ref CompletionSink sink)
    {
        Association listener = operation.Owner;
        if (listener.AcceptBacklog is { Count: > 0 } backlog)
        {
            FinishAccept(operation, backlog.Dequeue(), ref sink);
            return SocketError.IOPending;
        }

        return listener.MultishotAccept is null ? ArmMultishotAccept(listener) : SocketError.IOPending;
    }

    private SocketError ArmMultishotAccept(Association listener)
    {
        Operation multishot = _port.RentInternalOperation(OperationKind.AcceptMultishot, listener);
        SocketError submitted = Submit(multishot);
        if (submitted == SocketError.IOPending)
        {
            listener.MultishotAccept = multishot;
            _listeners.TryAdd(listener, 0);
        }
        else
        {
            _port.ReturnInternalOperation(multishot);
        }

        return submitted;
    }

    private void CompleteMultishotAccept(Operation multishot, in CompletionQueueEntry completion, ref CompletionSink sink)
    {
        Association listener = multishot.Owner;
        bool ended = (completion.Flags & IORING_CQE_F_MORE) == 0;
        lock (listener)
        {
            int result = completion.Result;
            Operation? waiting = FirstWaitingAccept(listener);
            if (result >= 0)
            {
                if (waiting is not null)
                {
                    FinishAccept(waiting, result, ref sink);
                }
                else if (listener.IsRemoved || _disposing)
                {
                    Interop.Close(result);
                }
                else
                {
                    (listener.AcceptBacklog ??= new Queue<int>()).Enqueue(result);
                    if (listener.AcceptBacklog.Count >= MaxAcceptBacklog && !ended)
                    {
                        RequestCancel(multishot); // Nobody accepts: let the kernel's own backlog hold the rest.
                    }
                }
            }
            else if (ended && waiting is not null && result != -(int)Errno.ECANCELED)
            {
                // A failure (too many open files, say) goes to one waiting Accept, so that none loops on it.
                waiting.Error = ToSocketError((Errno)(-result));
                sink.Add(_port.Finish(waiting));
            }

            if (!ended)
            {
                return;
            }

            Interlocked.Decrement(ref _inKernel);
            listener.MultishotAccept = null;
            _port.ReturnInternalOperation(multishot);
            if (listener.IsRemoved || _disposing)
            {
                CloseBacklog(listener);
            }
            else if (FirstWaitingAccept(listener) is { } next && ArmMultishotAccept(listener) != SocketError.IOPending)
            {
                next.Error = SocketError.NoBufferSpaceAvailable;
                sink.Add(_port.Finish(next));
            }
        }
    }

    private static Operation? FirstWaitingAccept(Association listener)
    {
        for (Operation? operation = listener.ReceiveSide.Head; operation is not null; operation = operation.Next)
        {
            if (operation.Kind == OperationKind.Accept)
            {
                return operation;
            }
        }

        return null;
    }

    private void FinishAccept(Operation operation, int fd, ref CompletionSink sink)
    {
        try
        {
            operation.AcceptedSocket = Operation.NewAcceptedSocket(fd);
        }
        catch (SocketException e)
        {
            Interop.Close(fd);
            operation.Error = e.SocketErrorCode;
        }

        sink.Add(_port.Finish(operation));
    }

    private static void CloseBacklog(Association listener)
    {
        while (listener.AcceptBacklog is { Count: > 0 } backlog)
        {
            Interop.Close(backlog.Dequeue());
        }
    }

    private PooledBuffer TakeSelectedBuffer(int id)
    {
        Interlocked.Decrement(ref _buffersInRing);
        return Buffers[id];
    }

    /// <summary>Offers a buffer to the kernel again. Called under the buffers gate.</summary>
    private void AddToBufferRing(PooledBuffer buffer)
    {
        // Field by field: the first entry's last field is the ring's tail and must not be overwritten.
        ProvidedBuffer* slot = &_bufferRing[_bufferRingTail & (_bufferCount - 1)];
        slot->Address = (ulong)buffer.Address;
        slot->Length = (uint)buffer.Length;
        slot->BufferId = buffer.Id;
        _bufferRingTail++;
        Volatile.Write(ref _bufferRing->Reserved, _bufferRingTail); // Publishes the entry to the kernel.
        Interlocked.Increment(ref _buffersInRing);
    }

    private bool UpdateFixedFile(int slot, int fd)
    {
        FilesUpdate update = new() { Offset = (uint)slot, Fds = (ulong)&fd };
        return Register(_ringFd, IORING_REGISTER_FILES_UPDATE, &update, 1) == 1;
    }
}
