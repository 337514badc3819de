using System.Net.Sockets;
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
/// already holds entries), then turns ready events into notifications, reaps finished operations, and drains the
/// queue into what room is left. If entries or completions remain, it wakes another waiter for them.
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

    public sealed override void Wake() => Epoll.Wake();

    public override void Dispose()
    {
        Epoll.Dispose();
        Queue.Clear();
    }

    protected sealed override int Wait(Span<CompletionEntry> entries, int timeoutMilliseconds)
    {
        Span<ReadyEvent> ready = stackalloc ReadyEvent[Math.Min(entries.Length, MaxReadyEventsPerWait)];
        int readyCount;
        if (timeoutMilliseconds == 0)
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
            Wake(); // Pass the disposal wake on to the next waiter.
            return PortClosed;
        }

        Queue.TakeWake();
        CompletionSink sink = new(entries, this);
        Deliver(ready[..readyCount], ref sink);
        Reap(ref sink);
        int produced = sink.Count + Queue.Drain(entries[sink.Count..]);
        if (!Queue.IsEmpty || CompletionsWaiting)
        {
            Queue.SignalIfSleeping(); // More than fit here: let another waiter take the rest.
        }

        return produced;
    }

    /// <summary>
    /// Waits in the kernel up to <paramref name="timeoutMilliseconds"/> for readiness (and, for an engine with a ring,
    /// finished operations) and returns the ready events written; 0 when it returned for completions, a wake, a signal
    /// or the timeout.
    /// </summary>
    protected abstract int WaitForEvents(Span<ReadyEvent> ready, int timeoutMilliseconds);

    /// <summary>Readiness reported for an associated socket (an engine that performs operations on readiness).</summary>
    protected abstract void OnAssociationReady(Association association, SocketNotifyEvents events, ref CompletionSink sink);

    /// <summary>Collects finished operations into the sink, at most as many as it has room for.</summary>
    protected abstract void Reap(ref CompletionSink sink);

    /// <summary>Whether finished operations wait to be reaped (a waiter that left some wakes another).</summary>
    protected abstract bool CompletionsWaiting { get; }

    /// <summary>
    /// Turns kernel readiness into notifications, dropping stale tokens and what the registration does not deliver,
    /// and hands an associated socket's readiness to the operations.
    /// </summary>
    private void Deliver(scoped ReadOnlySpan<ReadyEvent> ready, ref CompletionSink sink)
    {
        foreach (ReadyEvent readyEvent in ready)
        {
            // A stale token finds nothing. A closed socket whose file lives on elsewhere (dup, fork) still has a kernel
            // registration that no one can delete any more; its events are dropped here.
            Registration? registration = Port.Registrations.Find(readyEvent.Token);
            if (registration is null || registration.Handle.IsClosed)
            {
                continue;
            }

            if (registration is Association association)
            {
                OnAssociationReady(association, readyEvent.Events, ref sink);
                continue;
            }

            SocketNotifyEvents events = registration.Filter(readyEvent.Events, (readyEvent.Events & ReadyEvent.Closed) != 0);
            if (events != SocketNotifyEvents.None)
            {
                sink.Add(new CompletionEntry(registration.CompletionKey, (uint)events, null));
            }
        }
    }
}
