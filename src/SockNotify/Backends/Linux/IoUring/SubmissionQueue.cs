using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// The submission side of a ring (liburing's <c>queue.c</c>, submit half), shared by every thread: a thread takes the
/// <see cref="Gate"/>, fills <see cref="NextEntry"/>, and <see cref="Publish"/>es it; entries reach the kernel with the
/// next <see cref="Submit"/> or the next wait that submits <see cref="Pending"/> entries.
/// </summary>
internal sealed unsafe class SubmissionQueue
{
    private readonly Ring _ring;
    private readonly uint* _head;
    private readonly uint* _tail;
    private readonly uint* _flags;
    private readonly uint _mask;
    private readonly uint _entries;
    private readonly SubmissionEntry* _sqes;

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

        // Entries are used in ring order, so the indirection array is the identity.
        uint* array = (uint*)(rings + parameters.SqOffsets.Array);
        for (uint i = 0; i < _entries; i++)
        {
            array[i] = i;
        }
    }

    /// <summary>Guards the tail and the entry being filled: held from <see cref="NextEntry"/> to <see cref="Publish"/>.</summary>
    public Lock Gate { get; } = new();

    /// <summary>Entries published and not yet consumed by the kernel.</summary>
    public uint Pending => Volatile.Read(ref *_tail) - Volatile.Read(ref *_head);

    /// <summary>
    /// Whether the kernel asks for an <c>io_uring_enter</c> with GETEVENTS: deferred task work to run (TASKRUN) or
    /// completions held back in its overflow list (CQ_OVERFLOW).
    /// </summary>
    public bool KernelWorkPending => (Volatile.Read(ref *_flags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN)) != 0;

    /// <summary>The next free entry, zeroed, or null when the ring stays full. Under <see cref="Gate"/>.</summary>
    public SubmissionEntry* NextEntry()
    {
        uint tail = *_tail;
        if (tail - Volatile.Read(ref *_head) == _entries)
        {
            _ring.Enter(_entries, 0, 0, null); // Submitting frees the entries whatever the completion queue holds.
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

    /// <summary>Makes the entry from <see cref="NextEntry"/> visible to the kernel. Under <see cref="Gate"/>.</summary>
    // Release store: the kernel reads the tail and then the entries before it, so they must be written first.
    public void Publish() => Volatile.Write(ref *_tail, *_tail + 1);

    /// <summary>Submits every published entry now.</summary>
    public void Submit()
    {
        uint toSubmit = Pending;
        if (toSubmit > 0)
        {
            _ring.Enter(toSubmit, 0, 0, null);
        }
    }
}
