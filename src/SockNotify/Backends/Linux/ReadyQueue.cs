using System.Collections.Concurrent;

namespace SockNotify.Backends.Linux;

/// <summary>
/// Entries ready to dequeue that the kernel does not hold on Linux: posted packets, Remove notifications and
/// completions that did not fit a dequeuer's array, in the order they were queued, with the protocol that wakes a
/// sleeping thread for them.
/// <para>
/// The wake protocol: a thread counts itself in <see cref="_sleepers"/> (a full fence) before it looks at the queue and
/// blocks; a producer enqueues (a full fence) before it reads the count. So either the sleeper sees the entry or the
/// producer sees the sleeper. <see cref="_wakeSignalled"/> is set only by the producer that then writes the wake, and
/// cleared only by a returning waiter that then looks at the queue, so one wake is pending at most and no entry waits
/// unseen while every thread sleeps.
/// </para>
/// </summary>
internal sealed class ReadyQueue(EpollSelector epoll)
{
    private readonly ConcurrentQueue<CompletionEntry> _entries = new();

    /// <summary>1 while a wake is signalled for the queue and no returning waiter has taken it yet.</summary>
    private int _wakeSignalled;

    /// <summary>
    /// Threads in, or about to enter, a blocking wait. Each counts itself before it looks at the queue (and, with
    /// io_uring, at the entries to submit), so work added while no thread is counted needs no wake: the next waiter sees it.
    /// </summary>
    private int _sleepers;

    public bool IsEmpty => _entries.IsEmpty;

    /// <summary>Entries queued now; walks the queue's segments, so for the meter, not for the hot path.</summary>
    public int Count => _entries.Count;

    /// <summary>Whether some thread sleeps or is about to; the caller makes a full fence after its own write first.</summary>
    public bool HasSleepers => Volatile.Read(ref _sleepers) != 0;

    public void Enqueue(in CompletionEntry entry)
    {
        _entries.Enqueue(entry);
        SignalIfSleeping();
    }

    /// <summary>Counts the calling thread as a sleeper: call before looking at the queue, then <see cref="LeaveSleep"/>.</summary>
    public void EnterSleep() => Interlocked.Increment(ref _sleepers);

    public void LeaveSleep() => Interlocked.Decrement(ref _sleepers);

    /// <summary>Wakes one sleeper if one sleeps and no wake is pending yet.</summary>
    public void SignalIfSleeping()
    {
        Interlocked.MemoryBarrier();
        if (HasSleepers && Volatile.Read(ref _wakeSignalled) == 0 && Interlocked.Exchange(ref _wakeSignalled, 1) == 0)
        {
            epoll.Wake();
        }
    }

    /// <summary>
    /// Called by every returning waiter before it looks at the queue (a full fence orders the two), so an entry queued
    /// while the flag was set is either seen then or signals a new wake.
    /// </summary>
    public void TakeWake()
    {
        if (Volatile.Read(ref _wakeSignalled) != 0)
        {
            Interlocked.Exchange(ref _wakeSignalled, 0);
        }
    }

    /// <summary>Moves queued entries into <paramref name="entries"/> while there is room; returns how many.</summary>
    public int Drain(Span<CompletionEntry> entries)
    {
        if (_entries.IsEmpty || entries.IsEmpty)
        {
            return 0;
        }

        int taken = 0;
        while (taken < entries.Length && _entries.TryDequeue(out CompletionEntry entry))
        {
            entries[taken++] = entry;
        }

        return taken;
    }

    /// <summary>Drops every entry (port teardown), releasing what each holds.</summary>
    public void Clear()
    {
        while (_entries.TryDequeue(out CompletionEntry dropped))
        {
            dropped.DropUndelivered();
        }
    }
}
