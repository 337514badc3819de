using System.Net.Sockets;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// The submission side of a ring (liburing's <c>queue.c</c>, submit half), shared by every thread: a thread takes the
/// <see cref="Gate"/>, fills <see cref="NextEntry"/>, and <see cref="Publish"/>es it; entries reach the kernel with the
/// next <see cref="Submit"/> or the next wait that submits <see cref="Pending"/> entries.
/// <para>
/// Sockets are named by descriptor, and a descriptor number can be reused as soon as its socket is closed. So every
/// enter, under the gate, first takes a reference on the handle of each socket its entries name, which keeps those
/// descriptors from closing for the length of the call, and turns the entries of sockets already closed into requests on
/// descriptor -1 (which end with EBADF: OperationAborted); the kernel then holds each socket it took for itself. No
/// reference is held between calls, so an owner's close takes effect at once, as it does for .NET's own sockets
/// while their operations wait, and nothing of the ring's keeps an idle socket open. Enters are serialized by their own
/// lock, so no call submits an entry it did not scan, while writers go on publishing behind the scanned ones.
/// </para>
/// </summary>
internal sealed unsafe class SubmissionQueue
{
    /// <summary>How often <see cref="SubmitUntil"/> tries before it gives up (about a second of refusals).</summary>
    private const int MaxSubmitAttempts = 1000;

    private readonly Ring _ring;
    private readonly uint* _head;
    private readonly uint* _tail;
    private readonly uint* _flags;
    private readonly uint _mask;
    private readonly uint _entries;
    private readonly SubmissionEntry* _sqes;

    /// <summary>
    /// The socket each published entry names (null for entries that name none); written under the gate. An entry the
    /// kernel took keeps its handle here until its slot is written again, which only keeps a closed handle object alive.
    /// </summary>
    private readonly SafeSocketHandle?[] _sockets;

    /// <summary>The sockets the enter in progress holds (scratch, under the enter lock).</summary>
    private readonly SafeSocketHandle?[] _held;

    /// <summary>Serializes enters: the kernel takes entries only during one, so a scan stays true until its enter ends.</summary>
    private readonly Lock _enterGate = new();

    public SubmissionQueue(Ring ring, in Parameters parameters, byte* rings, SubmissionEntry* sqes)
    {
        _ring = ring;
        // SAFETY: offsets the kernel gave for this mapping; they stay valid until the ring is unmapped.
        _head = (uint*)(rings + parameters.SqOffsets.Head);
        _tail = (uint*)(rings + parameters.SqOffsets.Tail);
        _flags = (uint*)(rings + parameters.SqOffsets.Flags);
        _mask = *(uint*)(rings + parameters.SqOffsets.RingMask);
        _entries = parameters.SqEntries;
        _sqes = sqes;
        _sockets = new SafeSocketHandle?[_entries];
        _held = new SafeSocketHandle?[_entries];

        // Entries are used in ring order, so the indirection array is the identity.
        uint* array = (uint*)(rings + parameters.SqOffsets.Array);
        for (uint i = 0; i < _entries; i++)
        {
            array[i] = i;
        }
    }

    /// <summary>Guards the tail, the entry being filled, and every enter: held from <see cref="NextEntry"/> to <see cref="Publish"/>.</summary>
    public Lock Gate { get; } = new();

    /// <summary>Entries published and not yet consumed by the kernel.</summary>
    public uint Pending => Volatile.Read(ref *_tail) - Volatile.Read(ref *_head);

    /// <summary>The tail: entries published so far. Under <see cref="Gate"/> for a value that includes the caller's own.</summary>
    public uint Tail => Volatile.Read(ref *_tail);

    /// <summary>
    /// Whether the kernel asks for an <c>io_uring_enter</c> with GETEVENTS: deferred task work to run (TASKRUN) or
    /// completions held back in its overflow list (CQ_OVERFLOW).
    /// </summary>
    public bool KernelWorkPending => (Volatile.Read(ref *_flags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;

    /// <summary>Whether the kernel holds completions back in its overflow list (the ring was full); a GETEVENTS enter moves them in.</summary>
    public bool CompletionsOverflowed => (Volatile.Read(ref *_flags) & IORING_SQ_CQ_OVERFLOW) != 0;

    /// <summary>The next free entry, zeroed, or null when the ring stays full. Under <see cref="Gate"/>.</summary>
    public SubmissionEntry* NextEntry()
    {
        uint tail = *_tail;
        if (tail - Volatile.Read(ref *_head) == _entries)
        {
            Enter(_entries, 0, 0, null); // Submitting frees the entries whatever the completion queue holds.
            if (tail - Volatile.Read(ref *_head) == _entries)
            {
                return null;
            }
        }

        // SAFETY: the index is masked into the mapped entry array, and the entry is not published yet, so the kernel
        // does not read it while it is written.
        SubmissionEntry* entry = &_sqes[tail & _mask];
        *entry = default;
        return entry;
    }

    /// <summary>
    /// Makes the entry from <see cref="NextEntry"/> visible to the kernel; <paramref name="socket"/> is the socket it
    /// names by descriptor, or null. Under <see cref="Gate"/>.
    /// </summary>
    public void Publish(SafeSocketHandle? socket)
    {
        uint tail = *_tail;
        _sockets[tail & _mask] = socket;
        // Release store: the kernel reads the tail and then the entries before it, so they must be written first.
        Volatile.Write(ref *_tail, tail + 1);
    }

    /// <summary>Submits every published entry now.</summary>
    public void Submit()
    {
        uint toSubmit = Pending;
        if (toSubmit > 0)
        {
            Enter(toSubmit, 0, 0, null);
        }
    }

    /// <summary>
    /// Submits until the kernel has taken every entry published before <paramref name="tail"/>, retrying a short submit
    /// (the kernel takes fewer while it cannot post completions: EBUSY, EAGAIN), which a single enter may leave.
    /// </summary>
    /// <exception cref="IOException">The kernel kept refusing; the ring cannot go on.</exception>
    public void SubmitUntil(uint tail)
    {
        for (int attempt = 0; (int)(tail - Volatile.Read(ref *_head)) > 0; attempt++)
        {
            if (attempt == MaxSubmitAttempts)
            {
                throw new IOException($"io_uring took none of {Pending} entries in {MaxSubmitAttempts} attempts.");
            }

            if (attempt > 0)
            {
                Thread.Sleep(1); // Let reapers make room in the completion queue.
            }

            // GETEVENTS moves completions the kernel held back into the ring, which is what a refused submit waits for.
            Enter(Pending, 0, attempt == 0 ? 0 : IORING_ENTER_GETEVENTS, null);
        }
    }

    /// <summary>
    /// Disposes <paramref name="socket"/> between enters, when none holds its handle: .NET would close it abortively
    /// (RST instead of FIN) if one did. Enters that come after find it closed (see the class remarks).
    /// </summary>
    public void CloseBetweenEnters(Socket socket)
    {
        lock (_enterGate)
        {
            socket.Dispose();
        }
    }

    /// <summary>
    /// <c>io_uring_enter</c> (see <see cref="Ring.Enter"/>) submitting every published entry, with their sockets held
    /// for the call (see the class remarks); <paramref name="toSubmit"/> 0 submits nothing, only waits or runs kernel work.
    /// </summary>
    public void Enter(uint toSubmit, uint minComplete, uint flags, GetEventsArgument* argument)
    {
        lock (_enterGate)
        {
            uint head = Volatile.Read(ref *_head);
            // Acquire load: the sockets of the entries before the tail were written before it was published.
            uint count = toSubmit == 0 ? 0 : Volatile.Read(ref *_tail) - head;
            int held = 0;
            try
            {
                for (uint i = 0; i < count; i++)
                {
                    uint index = (head + i) & _mask;
                    if (_sockets[index] is not { } socket)
                    {
                        continue;
                    }

                    bool added = false;
                    try
                    {
                        socket.DangerousAddRef(ref added);
                        _held[held++] = socket;
                    }
                    catch (ObjectDisposedException)
                    {
                        // SAFETY: the entry is published and not taken (it is at or after the head), and the kernel takes
                        // entries only during an enter, which this thread alone is making.
                        _sqes[index].Fd = -1; // Closed: its number may belong to another socket already.
                    }
                }

                _ring.Enter(count, minComplete, flags, argument);
            }
            finally
            {
                for (int i = 0; i < held; i++)
                {
                    _held[i]!.DangerousRelease();
                    _held[i] = null;
                }
            }
        }
    }
}
