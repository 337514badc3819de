using System.Diagnostics.Metrics;

namespace SockNotify.Internal;

/// <summary>
/// The process's SockNotify figures as .NET metrics (meter <c>SockNotify</c>), read by <c>dotnet-counters</c>, OpenTelemetry
/// or an in-process <see cref="MeterListener"/>: live ports, registrations and associations, operations in flight, and
/// pooled buffers lent to the user. Every instrument is observable: the figures are summed over the live ports only when
/// someone collects them, so the hot paths pay nothing.
/// </summary>
internal static class PortMetrics
{
    public const string MeterName = "SockNotify";

    private static readonly Meter s_meter = new(MeterName);
    private static readonly Lock s_gate = new();

    /// <summary>Weak, so that a port its owner dropped without disposing can still be collected.</summary>
    private static readonly List<WeakReference<PortCore>> s_ports = [];

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
    }

    public static void Add(PortCore port)
    {
        lock (s_gate)
        {
            s_ports.RemoveAll(entry => !entry.TryGetTarget(out _)); // Ports collected without being disposed.
            s_ports.Add(new WeakReference<PortCore>(port));
        }
    }

    /// <summary>At the start of the port's disposal: from then on it counts nowhere (buffers it still lends included).</summary>
    public static void Remove(PortCore port)
    {
        lock (s_gate)
        {
            s_ports.RemoveAll(entry => !entry.TryGetTarget(out PortCore? target) || target == port);
        }
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
}
