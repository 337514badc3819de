using SockNotify.Backends.Linux.IoUring;
using SockNotify.Internal;

namespace SockNotify.Backends.Linux;

/// <summary>
/// What both Linux engines share: epoll reports readiness and wakes waiters (<see cref="EpollSelector"/>), a managed
/// <see cref="ReadyQueue"/> holds posted entries, and notification registrations go straight to epoll. The two
/// engines differ in how operations run: <see cref="IoUringEngine"/> in the kernel's ring, <see cref="EpollEngine"/>
/// as non-blocking calls made on readiness.
/// <para>
/// One wait (<see cref="Wait"/>): the thread counts itself a sleeper, waits in the kernel (not blocking if the queue
/// already holds entries), then fills the caller's array with queued entries and notifications (taking turns at the
/// front when both have more than fits, so neither starves), then completions: those performed on readiness and those
/// reaped from the kernel, after the queue's older ones (when the queue alone filled the array, what the kernel finished
/// goes in behind it). If entries or completions remain, it wakes another waiter.
/// </para>
/// </summary>
internal abstract class LinuxEngine : PortEngine
{
    /// <summary>The most kernel events one wait asks for, which bounds its stack use (16 bytes each).</summary>
    private const int MaxReadyEventsPerWait = 512;

    protected LinuxEngine(PortCore port, CompletionPortOptions options, EpollSelector epoll)
        : base(port, options)
    {
        Epoll = epoll;
        Queue = new ReadyQueue(epoll);
    }

    protected EpollSelector Epoll { get; }

    protected ReadyQueue Queue { get; }

    /// <summary>Whether readiness goes before the queue at the next wait that has both (a hint; races are harmless).</summary>
    private bool _readinessTurn;

    /// <summary>
    /// io_uring when asked for, or when automatic and neither the kernel nor <c>SOCKNOTIFY_IO_URING=0</c> refuses it;
    /// else epoll.
    /// </summary>
    public static new LinuxEngine Create(PortCore port, CompletionPortOptions options)
    {
        EpollSelector epoll = new();
        try
        {
            bool disabledByEnvironment = Environment.GetEnvironmentVariable("SOCKNOTIFY_IO_URING") == "0";
            if (options.Backend == CompletionPortBackend.IoUring
                || (options.Backend == CompletionPortBackend.Automatic && !disabledByEnvironment))
            {
                if (IoUringEngine.TryCreate(port, epoll, options, out IoUringEngine? engine, out string? refusal))
                {
                    return engine;
                }

                if (options.Backend == CompletionPortBackend.IoUring)
                {
                    throw new PlatformNotSupportedException($"io_uring is not available: {refusal}");
                }
            }

            return new EpollEngine(port, options, epoll);
        }
        catch
        {
            epoll.Dispose();
            throw;
        }
    }

    public sealed override SocketNotifyResult Add(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        Epoll.Add(registration.Handle, registration.Token, filter, trigger);

    public sealed override SocketNotifyResult Modify(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        Epoll.Modify(registration.Handle, registration.Token, filter, trigger);

    public sealed override SocketNotifyResult Disable(Registration registration) => Epoll.Disable(registration.Handle, registration.Token);

    public sealed override SocketNotifyResult Delete(Registration registration) => Epoll.Delete(registration.Handle);

    public sealed override void Post(in CompletionEntry entry) => Queue.Enqueue(entry);

    public sealed override int QueueLength => Queue.Count;

    public sealed override void Wake() => Epoll.Wake();

    public override void Dispose()
    {
        Epoll.Dispose();
        Queue.Clear();
    }

    protected sealed override int Wait(Span<CompletionEntry> entries, int timeoutMilliseconds)
    {
        if (Port.Lifetime.IsDisposed)
        {
            Wake(); // Pass the disposal wake on to the next waiter.
            return PortClosed;
        }

        // Every entry goes to the caller through this sink, so that what was taken is known if the wait ends otherwise.
        CompletionSink taken = new(entries, this);
        int result;
        try
        {
            result = Fill(ref taken, timeoutMilliseconds);
        }
        catch
        {
            Requeue(entries[..taken.Count]);
            throw;
        }

        if (result == PortClosed)
        {
            Requeue(entries[..taken.Count]); // Disposal's teardown releases them with the rest of the queue.
        }

        return result;
    }

    /// <summary>The body of <see cref="Wait"/>: fills the sink and returns its count, or PortClosed.</summary>
    private int Fill(ref CompletionSink sink, int timeoutMilliseconds)
    {
        // Whose turn it is when the queue and the kernel's readiness both have entries: they take turns at the front,
        // so that neither starves the other however small the caller's array (one entry, in the seed's pattern).
        bool queueHasEntries = !Queue.IsEmpty;
        bool queueFirst = queueHasEntries && !_readinessTurn;
        if (queueHasEntries)
        {
            _readinessTurn = queueFirst; // Strictly alternating while the queue holds entries.
        }

        if (queueFirst)
        {
            Queue.TakeWake();
            sink.Advance(Queue.Drain(sink.Remaining));
            if (sink.Room == 0)
            {
                // No room left: ask the kernel for no readiness it could not deliver now. Finished operations go in
                // behind the queue, in order, so that a steady stream of posts cannot keep them waiting for a turn.
                CompletionSink behind = new([], this);
                Reap(ref behind, sink.Count);
                SignalIfLeftOver();
                return sink.Count;
            }
        }

        Span<ReadyEvent> ready = stackalloc ReadyEvent[Math.Min(sink.Room, MaxReadyEventsPerWait)];
        int readyCount;
        if (timeoutMilliseconds == 0 || sink.Count > 0)
        {
            readyCount = WaitForEvents(ready, 0);
        }
        else
        {
            Queue.EnterSleep();
            try
            {
                // Queued entries are ready now: poll the kernel without blocking, then take both.
                readyCount = WaitForEvents(ready, Queue.IsEmpty ? timeoutMilliseconds : 0);
            }
            finally
            {
                Queue.LeaveSleep();
            }
        }

        if (Port.Lifetime.IsDisposed)
        {
            Wake();
            return PortClosed;
        }

        ready = ready[..readyCount];
        if (!queueFirst)
        {
            Queue.TakeWake();
            sink.Advance(DeliverNotifications(ready, sink.Remaining, out readyCount));
            sink.Advance(Queue.Drain(sink.Remaining));
        }
        else
        {
            sink.Advance(DeliverNotifications(ready, sink.Remaining, out readyCount));
        }

        // Completions come after the queue, which holds only older ones (those that ended when they started, or that
        // did not fit an earlier dequeue), so one thread dequeues completions in the order they happened.
        DeliverToAssociations(ready[..readyCount], ref sink);
        Reap(ref sink, sink.Room);
        SignalIfLeftOver();
        return sink.Count;
    }

    /// <summary>More than fit here: let another waiter take the rest.</summary>
    private void SignalIfLeftOver()
    {
        if (!Queue.IsEmpty || CompletionsWaiting)
        {
            Queue.SignalIfSleeping();
        }
    }

    /// <summary>
    /// Waits in the kernel up to <paramref name="timeoutMilliseconds"/> for readiness (and, for an engine with a ring,
    /// finished operations) and returns the ready events written; 0 when it returned for completions, a wake, a signal
    /// or the timeout.
    /// </summary>
    protected abstract int WaitForEvents(Span<ReadyEvent> ready, int timeoutMilliseconds);

    /// <summary>Readiness reported for an associated socket (an engine that performs operations on readiness).</summary>
    protected abstract void OnAssociationReady(Association association, SocketNotifyEvents events, ref CompletionSink sink);

    /// <summary>Collects at most <paramref name="max"/> finished operations into the sink (which queues what it has no room for).</summary>
    protected abstract void Reap(ref CompletionSink sink, int max);

    /// <summary>Whether finished operations wait to be reaped (a waiter that left some wakes another).</summary>
    protected abstract bool CompletionsWaiting { get; }

    /// <summary>
    /// Turns kernel readiness into notifications in <paramref name="entries"/>, dropping stale tokens and what the
    /// registration does not deliver; those that do not fit wait in the queue. Returns how many were written, and moves
    /// the events of associated sockets to the front of <paramref name="ready"/> (<paramref name="associationEvents"/>).
    /// </summary>
    private int DeliverNotifications(Span<ReadyEvent> ready, Span<CompletionEntry> entries, out int associationEvents)
    {
        int count = 0;
        associationEvents = 0;
        foreach (ReadyEvent readyEvent in ready)
        {
            // A stale token finds nothing. A closed socket whose file lives on elsewhere (dup, fork) still has a kernel
            // registration that no one can delete any more; its events are dropped here.
            Registration? registration = Port.Registrations.Find(readyEvent.Token);
            if (registration is null || registration.Handle.IsClosed)
            {
                continue;
            }

            if (registration is Association)
            {
                ready[associationEvents++] = readyEvent; // Handled with the completions, after the queue.
                continue;
            }

            SocketNotifyEvents events = registration.Filter(readyEvent.Events, (readyEvent.Events & ReadyEvent.Closed) != 0);
            if (events != SocketNotifyEvents.None)
            {
                CompletionEntry entry = new(registration.CompletionKey, (uint)events, null, CompletionKind.Notification);
                if (count < entries.Length)
                {
                    entries[count++] = entry;
                }
                else
                {
                    Queue.Enqueue(entry); // An edge or one-shot report happens once: it must not be dropped.
                }
            }
        }

        return count;
    }

    /// <summary>Hands associated sockets' readiness to the operations (an engine that performs them on readiness).</summary>
    private void DeliverToAssociations(scoped ReadOnlySpan<ReadyEvent> ready, ref CompletionSink sink)
    {
        foreach (ReadyEvent readyEvent in ready)
        {
            if (Port.Registrations.Find(readyEvent.Token) is Association association)
            {
                OnAssociationReady(association, readyEvent.Events, ref sink);
            }
        }
    }
}
