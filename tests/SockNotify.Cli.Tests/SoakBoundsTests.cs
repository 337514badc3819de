using SockNotify.Cli.Soak;

namespace SockNotify.Cli.Tests;

/// <summary>The soak's bounds, fed series of figures: a healthy soak passes, and leaks of one per connection are caught.</summary>
public class SoakBoundsTests
{
    private const int Connections = 1000;
    private const int DescriptorsAtStart = 68;
    private const int PoolBuffers = 1024;

    /// <summary>A slow soak for these figures: 1,000 connections churned per second (the measured ones churn 5,000 to 10,000).</summary>
    private const int ChurnPerSecond = 1000;

    private static readonly SoakStart Start = new(Connections, DescriptorsAtStart, KernelObjects: 6,
        new SockNotifyFigures(Ports: 1, Registrations: 1, Operations: 16, BuffersLent: 0));

    [Fact]
    public void A_healthy_soak_stays_within_every_bound()
    {
        // Figures as a saturated server shows them: up to 0.6 N connections whose client left, memory that breathes.
        Random random = new(1);
        IReadOnlyList<SoakFigures> series = Series(seconds => Figures(seconds,
            lag: random.Next((int)(0.6 * Connections)), lent: random.Next(200), heapMiB: 12 + random.Next(10), rssMiB: 85 + random.Next(25)));

        Assert.Empty(Violations(series));
    }

    [Fact]
    public void A_leak_of_one_descriptor_per_connection_churned_is_caught_at_the_first_check()
    {
        IReadOnlyList<SoakFigures> series = Series(seconds => Figures(seconds, leakedDescriptors: (int)Churned(seconds)));

        (TimeSpan at, string violation) = Assert.Single(Violations(series).Take(1));
        Assert.Equal(TimeSpan.FromSeconds(20), at);
        Assert.StartsWith("descriptors ", violation);
        Assert.Contains("exceeds its bound 3,132", violation);
    }

    [Fact]
    public void A_leak_of_one_descriptor_per_ten_connections_is_caught_within_a_minute()
    {
        IReadOnlyList<SoakFigures> series = Series(seconds => Figures(seconds, leakedDescriptors: (int)Churned(seconds) / 10));

        Assert.Contains(Violations(series), v => v.Violation.StartsWith("descriptors ", StringComparison.Ordinal));
    }

    [Fact]
    public void A_leak_of_one_registration_or_operation_per_connection_churned_is_caught()
    {
        IReadOnlyList<SoakFigures> registrations = Series(seconds => Figures(seconds, leakedRegistrations: (int)Churned(seconds)));
        IReadOnlyList<SoakFigures> operations = Series(seconds => Figures(seconds, leakedOperations: (int)Churned(seconds)));

        Assert.StartsWith("SockNotify registrations ", Violations(registrations)[0].Violation);
        Assert.StartsWith("SockNotify operations in flight ", Violations(operations)[0].Violation);
    }

    [Fact]
    public void A_leak_of_one_pooled_buffer_per_connection_exceeds_the_bound_or_drains_the_pool_and_stalls()
    {
        // Fewer connections than the pool has buffers: the lent buffers pass N + 64.
        SoakStart few = Start with { Connections = 100 };
        IReadOnlyList<SoakFigures> leaking = Series(seconds => Figures(seconds, connections: 100, lag: 30, lent: (int)Math.Min(Churned(seconds), PoolBuffers)));
        Assert.StartsWith("SockNotify pooled buffers lent 1,024 exceeds its bound 164", Violations(leaking, few)[0].Violation);

        // More: the pool runs dry after 1,024 connections, every receive waits for a buffer, and nothing ends any more.
        IReadOnlyList<SoakFigures> drained = Series(seconds => Figures(seconds, lent: PoolBuffers) with { Completed = PoolBuffers, Reset = 0 });
        Assert.Contains("the soak stalled", Violations(drained)[0].Violation);
    }

    [Fact]
    public void A_leak_of_a_few_kilobytes_of_managed_heap_per_connection_churned_is_caught()
    {
        IReadOnlyList<SoakFigures> series = Series(seconds => Figures(seconds, heapMiB: 14 + Churned(seconds) * 4096 / (1024.0 * 1024)));

        Assert.StartsWith("managed heap ", Violations(series)[0].Violation);
    }

    [Fact]
    public void Resident_memory_that_keeps_growing_is_caught()
    {
        IReadOnlyList<SoakFigures> series = Series(seconds => Figures(seconds, rssMiB: 90 + 5 * seconds));

        Assert.StartsWith("resident memory ", Violations(series)[0].Violation);
    }

    [Fact]
    public void One_socket_registration_operation_or_buffer_still_held_when_the_clients_have_left_is_caught()
    {
        Assert.Empty(SoakBounds.CheckIdle(Start, Start.KernelObjects, Start.SockNotify));
        Assert.Contains("7 sockets and kernel objects", Assert.Single(SoakBounds.CheckIdle(Start, Start.KernelObjects + 1, Start.SockNotify)));
        Assert.Single(SoakBounds.CheckIdle(Start, Start.KernelObjects, Start.SockNotify with { Registrations = 2 }));
        Assert.Single(SoakBounds.CheckIdle(Start, Start.KernelObjects, Start.SockNotify with { Operations = 17 }));
        Assert.Single(SoakBounds.CheckIdle(Start, Start.KernelObjects, Start.SockNotify with { BuffersLent = 1 }));
    }

    [Fact]
    public void Anything_still_held_once_the_server_stopped_is_caught()
    {
        Assert.Empty(SoakBounds.CheckReleased(kernelObjectsBeforeServer: 2, kernelObjects: 2, default));
        Assert.Single(SoakBounds.CheckReleased(kernelObjectsBeforeServer: 2, kernelObjects: 3, default));
        Assert.Single(SoakBounds.CheckReleased(kernelObjectsBeforeServer: 2, kernelObjects: 2, new SockNotifyFigures(Ports: 1, 0, 0, 0)));
    }

    [Theory]
    [InlineData(6617, 20_000, true)] // 68 + 3 x 6,617 + 64 + 16 headroom = 19,999.
    [InlineData(6618, 20_000, false)]
    [InlineData(9000, 20_000, false)]
    [InlineData(1000, 3_200, true)]
    [InlineData(9000, null, true)]
    public void Connections_fit_when_the_open_files_limit_holds_two_descriptors_each_and_the_lag_allowance(int connections, int? limit, bool fits) =>
        Assert.Equal(fits, SoakBounds.Fits(connections, DescriptorsAtStart, limit));

    /// <summary>A 60 s soak sampled every 10 s, as CI runs it, with the warm-up's end at 12 s.</summary>
    private static IReadOnlyList<SoakFigures> Series(Func<double, SoakFigures> at) =>
        [.. new[] { 10.0, 12, 20, 30, 40, 50, 60 }.Select(at)];

    private static long Churned(double seconds) => (long)(seconds * ChurnPerSecond);

    /// <summary>The violations of a series, checked as the runner does: bounds from the samples up to 12 s, then each later one.</summary>
    private static List<(TimeSpan At, string Violation)> Violations(IReadOnlyList<SoakFigures> series, SoakStart? start = null)
    {
        TimeSpan warmUp = TimeSpan.FromSeconds(12);
        SoakBounds bounds = SoakBounds.After(start ?? Start, [.. series.Where(f => f.Elapsed <= warmUp)]);
        List<(TimeSpan, string)> violations = [];
        SoakFigures previous = series.Last(f => f.Elapsed <= warmUp);
        foreach (SoakFigures figures in series.Where(f => f.Elapsed > warmUp))
        {
            violations.AddRange(bounds.Check(previous, figures).Select(v => (figures.Elapsed, v)));
            previous = figures;
        }

        return violations;
    }

    private static SoakFigures Figures(
        double seconds, int connections = Connections, int lag = 300, int leakedDescriptors = 0, int leakedRegistrations = 0, int leakedOperations = 0,
        int lent = 50, double heapMiB = 14, double rssMiB = 90)
    {
        long churned = Churned(seconds);
        int serverConnections = (int)(0.3 * connections) + lag; // Many clients wait in the accept queue; some have left.
        return new SoakFigures(
            TimeSpan.FromSeconds(seconds),
            Open: connections * 9 / 10,
            Completed: churned * 2 / 3,
            Reset: churned / 3,
            BytesVerified: churned * 8192,
            Descriptors: DescriptorsAtStart + connections + serverConnections + leakedDescriptors,
            ResidentBytes: (long)(rssMiB * 1048576),
            HeapBytes: (long)(heapMiB * 1048576),
            new SockNotifyFigures(1, 1 + serverConnections + leakedRegistrations, 16 + serverConnections + leakedOperations, lent));
    }
}
