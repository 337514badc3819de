using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// The completion side of a ring (liburing's <c>queue.c</c>, reap half). One thread reaps at a time, under
/// <see cref="Gate"/>, in the kernel's order; the head is published after the entries were read, so the kernel never
/// overwrites an entry still being read.
/// </summary>
internal sealed unsafe class CompletionQueue
{
    private readonly uint* _head;
    private readonly uint* _tail;
    private readonly uint _mask;
    private readonly CompletionQueueEntry* _cqes;

    public CompletionQueue(in Parameters parameters, byte* rings)
    {
        // SAFETY: offsets the kernel gave for this mapping; they stay valid until the ring is unmapped.
        _head = (uint*)(rings + parameters.CqOffsets.Head);
        _tail = (uint*)(rings + parameters.CqOffsets.Tail);
        _mask = *(uint*)(rings + parameters.CqOffsets.RingMask);
        _cqes = (CompletionQueueEntry*)(rings + parameters.CqOffsets.Cqes);
    }

    /// <summary>Serializes reaping, so that completions are handled in the kernel's order.</summary>
    public Lock Gate { get; } = new();

    /// <summary>Whether completions wait in the ring.</summary>
    public bool HasEntries => Volatile.Read(ref *_tail) != Volatile.Read(ref *_head);

    /// <summary>The head and how many entries follow it, at most <paramref name="max"/>. Under <see cref="Gate"/>.</summary>
    public uint Peek(int max, out uint head)
    {
        head = *_head;
        // Acquire load: the kernel writes entries before it moves the tail.
        return Math.Min(Volatile.Read(ref *_tail) - head, (uint)max);
    }

    /// <summary>The entry at <paramref name="index"/> (a head value from <see cref="Peek"/> plus an offset), copied.</summary>
    // SAFETY: the index is masked into the mapped array, and entries between head and tail are the kernel's to keep.
    public CompletionQueueEntry this[uint index] => _cqes[index & _mask];

    /// <summary>Gives <paramref name="count"/> entries back to the kernel. Under <see cref="Gate"/>.</summary>
    // Release store: the entries were read before the kernel may reuse them.
    public void Advance(uint head, uint count) => Volatile.Write(ref *_head, head + count);
}
