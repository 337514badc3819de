using System.Net.Sockets;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// The submission side of a ring (liburing's <c>queue.c</c>, submit half), shared by every thread: a thread takes the
/// <see cref="Gate"/>, fills <see cref="NextEntry"/>, and <see cref="Publish"/>es it; entries reach the kernel with the
/// next <see cref="Submit"/> or the next wait that submits <see cref="Pending"/> entries.
/// <para>
/// Sockets are named by descriptor, and a descriptor number can be reused as soon as it is closed. So an entry that
/// names a socket holds a reference on its <see cref="SafeSocketHandle"/> (which defers its close) from the moment it
/// is written until the kernel has taken it: from then on the kernel holds the socket itself, and the owner's close
/// takes effect at once, with nothing of the port's keeping the socket open. References are dropped after each enter,
/// under the gate, and an entry's slot is written again only after its reference was dropped.
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

    /// <summary>The socket each written, not yet released entry names (null for entries that name none).</summary>
    private readonly SafeSocketHandle?[] _sockets;

    /// <summary>Entries before this index had their socket reference dropped; their slots may be written again.</summary>
    private uint _released;

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
        _released = *_tail;

        // Entries are used in ring order, so the indirection array is the identity.
        uint* array = (uint*)(rings + parameters.SqOffsets.Array);
        for (uint i = 0; i < _entries; i++)
        {
            array[i] = i;
        }
    }

    /// <summary>Guards the tail, the entry being filled and the socket references: held from <see cref="NextEntry"/> to <see cref="Publish"/>.</summary>
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
        if (tail - _released == _entries)
        {
            Enter(_entries, 0, 0, null); // Submitting frees the entries whatever the completion queue holds.
            if (tail - _released == _entries)
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
    /// Takes a reference on the socket an entry about to be written names, and returns its descriptor; false if the
    /// socket is closed (nothing is held then). Under <see cref="Gate"/>, before <see cref="Publish"/>.
    /// </summary>
    public static bool TryHold(SafeSocketHandle socket, out int fd)
    {
        bool added = false;
        try
        {
            socket.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
        }

        fd = added ? (int)socket.DangerousGetHandle() : -1;
        return added;
    }

    /// <summary>
    /// Makes the entry from <see cref="NextEntry"/> visible to the kernel, with the socket reference taken by
    /// <see cref="TryHold"/> (or null), which is dropped once the kernel took the entry. Under <see cref="Gate"/>.
    /// </summary>
    public void Publish(SafeSocketHandle? held)
    {
        uint tail = *_tail;
        _sockets[tail & _mask] = held;
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

    /// <summary><c>io_uring_enter</c> (see <see cref="Ring.Enter"/>), then drops the references of the entries it took.</summary>
    public void Enter(uint toSubmit, uint minComplete, uint flags, GetEventsArgument* argument)
    {
        try
        {
            _ring.Enter(toSubmit, minComplete, flags, argument);
        }
        finally
        {
            if (toSubmit > 0)
            {
                ReleaseTaken();
            }
        }
    }

    /// <summary>Drops every reference still held (the ring is closed: the kernel will take nothing more).</summary>
    public void ReleaseAll()
    {
        lock (Gate)
        {
            for (; _released != *_tail; _released++)
            {
                Release(_released);
            }
        }
    }

    private void ReleaseTaken()
    {
        lock (Gate)
        {
            uint head = Volatile.Read(ref *_head);
            for (; _released != head; _released++)
            {
                Release(_released);
            }
        }
    }

    private void Release(uint index)
    {
        ref SafeSocketHandle? held = ref _sockets[index & _mask];
        held?.DangerousRelease();
        held = null;
    }
}
