using System.Diagnostics.Metrics;

namespace SockNotify.Internal;

/// <summary>
/// The process's SockNotify figures as .NET metrics (meter <c>SockNotify</c>), read by <c>dotnet-counters</c>, OpenTelemetry
/// or an in-process <see cref="MeterListener"/>: live ports, registrations and associations, operations in flight,
/// pooled buffers lent to the user and entries queued for a dequeue (up-down counters, figures of now), and the
/// notifications, completions and posts delivered since the process started (counters). Every instrument is
/// observable: the figures are summed over the live ports only when someone collects them, so the hot paths pay only
/// the plain counts the ports keep anyway (see <see cref="Backends.PortEngine.NotificationsDelivered"/>: one add per
/// dequeue call and kind).
/// <para>
/// A counter must never go down, but a disposed port stops being summed: its deliveries are added to
/// <see cref="s_retired"/> when it is disposed, so the counters keep them. (Deliveries of dequeues still running when
/// disposal began are lost to the meter; a port dropped without disposal takes its counts with it when collected.)
/// </para>
/// </summary>
internal static class PortMetrics
{
    public const string MeterName = "SockNotify";

    private static readonly Meter s_meter = new(MeterName);
    private static readonly Lock s_gate = new();

    /// <summary>Weak, so that a port its owner dropped without disposing can still be collected.</summary>
    private static readonly List<WeakReference<PortCore>> s_ports = [];

    /// <summary>What disposed ports delivered, under <see cref="s_gate"/>.</summary>
    private static Delivered s_retired;

    static PortMetrics()
    {
        s_meter.CreateObservableUpDownCounter("socknotify.port.active", () => Sum(_ => 1), "{port}",
            "Ports created and not yet disposed.");
        s_meter.CreateObservableUpDownCounter("socknotify.registration.active", () => Sum(port => port.Registrations.Count),
            "{registration}", "Notification registrations and operation associations in live ports.");
        s_meter.CreateObservableUpDownCounter("socknotify.operation.active", () => Sum(port => port.Operations.InUse),
            "{operation}", "Overlapped operations started and not yet dequeued as completed.");
        s_meter.CreateObservableUpDownCounter("socknotify.pool.buffer.lent", () => Sum(port => port.Engine.BuffersLent),
            "{buffer}", "Pooled receive buffers handed to the user and not yet returned.");
        s_meter.CreateObservableUpDownCounter("socknotify.queue.length", () => Sum(port => port.Engine.QueueLength),
            "{entry}", "Entries queued in live ports for a dequeue: posts, Remove notifications, and entries that did not fit a dequeuer's array.");
        s_meter.CreateObservableCounter("socknotify.notification.delivered", () => Total(static d => d.Notifications),
            "{notification}", "Socket notifications (Remove included) delivered by dequeues.");
        s_meter.CreateObservableCounter("socknotify.completion.delivered", () => Total(static d => d.Completions),
            "{completion}", "Overlapped operation completions delivered by dequeues.");
        s_meter.CreateObservableCounter("socknotify.post.delivered", () => Total(static d => d.Posts),
            "{packet}", "Packets posted with PostQueuedCompletionStatus and delivered by dequeues.");
    }

    public static void Add(PortCore port)
    {
        lock (s_gate)
        {
            s_ports.RemoveAll(entry => !entry.TryGetTarget(out _)); // Ports collected without being disposed.
            s_ports.Add(new WeakReference<PortCore>(port));
        }
    }

    /// <summary>
    /// At the start of the port's disposal: from then on its figures of now count nowhere (buffers it still lends
    /// included), and what it delivered is kept in the counters' totals.
    /// </summary>
    public static void Remove(PortCore port)
    {
        lock (s_gate)
        {
            if (s_ports.RemoveAll(entry => !entry.TryGetTarget(out PortCore? target) || target == port) > 0)
            {
                s_retired += Delivered.Of(port);
            }
        }
    }

    /// <summary>What disposed ports delivered plus what the live ones have delivered so far.</summary>
    private static long Total(Func<Delivered, long> figure)
    {
        Delivered total;
        lock (s_gate)
        {
            // Under the lock, so that a port being disposed is counted once: in the live list or in the retired total.
            total = s_retired;
            foreach (WeakReference<PortCore> entry in s_ports)
            {
                if (entry.TryGetTarget(out PortCore? port))
                {
                    total += Delivered.Of(port);
                }
            }
        }

        return figure(total);
    }

    private static int Sum(Func<PortCore, int> figure)
    {
        List<PortCore> live = [];
        lock (s_gate)
        {
            foreach (WeakReference<PortCore> entry in s_ports)
            {
                if (entry.TryGetTarget(out PortCore? port))
                {
                    live.Add(port);
                }
            }
        }

        // Outside the lock: a figure may take a port's own lock, which must never hold up ports being made or disposed.
        int sum = 0;
        foreach (PortCore port in live)
        {
            sum += figure(port);
        }

        return sum;
    }

    /// <summary>Entries delivered, by kind.</summary>
    private readonly record struct Delivered(long Notifications, long Completions, long Posts)
    {
        public static Delivered Of(PortCore port) =>
            new(port.Engine.NotificationsDelivered, port.Engine.CompletionsDelivered, port.Engine.PostsDelivered);

        public static Delivered operator +(Delivered a, Delivered b) =>
            new(a.Notifications + b.Notifications, a.Completions + b.Completions, a.Posts + b.Posts);
    }
}
