using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using SockNotify.Cli.Echo;

namespace SockNotify.Cli.Soak;

/// <summary>What <c>socknotify soak</c> was asked to do.</summary>
internal sealed record SoakPlan(
    string Engine,
    CompletionPortBackend Backend,
    int Connections,
    TimeSpan Duration,
    TimeSpan Interval,
    int Seed,
    int ServerThreads)
{
    /// <summary>20 % of the duration, at least 10 s (but at most half of a short run).</summary>
    public TimeSpan WarmUp => TimeSpan.FromTicks(Math.Max(Duration.Ticks / 5, Math.Min(TimeSpan.FromSeconds(10).Ticks, Duration.Ticks / 2)));
}

/// <summary>
/// Runs a soak in this process: the echo server on 127.0.0.1, <see cref="SoakPlan.Connections"/> clients churning
/// connections against it, a line of figures every interval with the bounds of <see cref="SoakBounds"/> checked on every
/// line after the warm-up, then, once the clients have left, a check that the server is back to what it held at start,
/// and once it has stopped, that it released everything.
/// </summary>
internal sealed class SoakRunner(SoakPlan plan, TextWriter log)
{
    /// <summary>
    /// The most connections the clients keep waiting for the server to accept: Kestrel's listen backlog, the smallest of
    /// the engines' (the others listen with somaxconn, 4,096 by default). Thousands of clients connecting faster than a
    /// server accepts overflow the queue, the kernel answers with SYN cookies and later refuses some of them with a
    /// reset, which a client would report against the server.
    /// </summary>
    private const int MaxAwaitingAccept = 512;

    /// <summary>How long the clients may take to finish their last connections: one connection's timeout and some.</summary>
    private static readonly TimeSpan DrainTimeout = SoakConnection.Timeout + TimeSpan.FromSeconds(10);

    /// <summary>How long the server may take to process the last closes once the clients have left, and to tear down once stopped.</summary>
    private static readonly TimeSpan SettleTimeout = TimeSpan.FromSeconds(10);

    public async Task<int> RunAsync()
    {
        using SockNotifyMeter meter = new();
        IEchoServer server;
        int kernelObjectsBeforeServer;
        try
        {
            await PrimeAsync().ConfigureAwait(false);
            kernelObjectsBeforeServer = ProcessFigures.OpenKernelObjects();
            server = await StartServerAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or PlatformNotSupportedException or IOException or OperationCanceledException)
        {
            await log.WriteLineAsync($"soak FAILED: the {plan.Engine} engine did not start, or failed a one-byte echo before the soak: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        List<string> failures = [];
        SoakTally tally = new();
        await using (server.ConfigureAwait(false))
        {
            SoakStart start = await MeasureStartAsync(meter).ConfigureAwait(false);
            string backend = server.Backend is { } chosen ? $", {Name(chosen)} backend" : "";
            await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"soak: {plan.Engine} engine{backend} on {server.LocalEndPoint}, {plan.ServerThreads} server threads, {start.Connections} connections, {plan.Duration.TotalSeconds:0.#} s "
                + $"(warm-up {plan.WarmUp.TotalSeconds:0.#} s), seed {plan.Seed}; at start {start.Descriptors} descriptors, "
                + $"{start.SockNotify.Registrations} registrations, {start.SockNotify.Operations} operations")).ConfigureAwait(false);

            failures.AddRange(await ChurnAsync(server.LocalEndPoint, start, tally, meter).ConfigureAwait(false));
            // After a failure too: what the server still holds once the clients have gone tells where it stuck.
            IReadOnlyList<string> idle = await IdleAsync(start, meter).ConfigureAwait(false);
            if (failures.Count == 0)
            {
                failures.AddRange(idle);
            }

            string summary = await server.StopAsync().ConfigureAwait(false);
            await log.WriteLineAsync($"server stopped: {summary}").ConfigureAwait(false);
        }

        // After a failure, only the figures: what is still held then may be the failure's doing.
        IReadOnlyList<string> held = await ReleasedAsync(kernelObjectsBeforeServer, meter, failures.Count == 0 ? SettleTimeout : TimeSpan.Zero).ConfigureAwait(false);
        if (failures.Count == 0)
        {
            failures.AddRange(held);
        }

        if (failures.Count > 0)
        {
            foreach (string failure in failures)
            {
                await log.WriteLineAsync($"soak FAILED: {failure}").ConfigureAwait(false);
            }

            return ExitCodes.Failure;
        }

        await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
            $"soak passed: {tally.Completed + tally.Reset:N0} connections churned ({tally.Completed:N0} closed or half-closed, {tally.Reset:N0} reset), "
            + $"{SoakFigures.Mebibytes(tally.BytesVerified)} echoed and verified; every figure within its bound, back to its start once the clients left, "
            + $"and released by the stop")).ConfigureAwait(false);
        return ExitCodes.Success;
    }

    private Task<IEchoServer> StartServerAsync() =>
        EchoEngines.StartAsync(plan.Engine, new IPEndPoint(IPAddress.Loopback, 0), plan.ServerThreads, plan.Backend);

    /// <summary>
    /// Starts the engine, echoes a byte through it and stops it, so that what the process opens once and keeps (loaded
    /// assemblies, the socket engine's epoll) is open before the counts the end is checked against.
    /// </summary>
    private async Task PrimeAsync()
    {
        IEchoServer server = await StartServerAsync().ConfigureAwait(false);
        await using (server.ConfigureAwait(false))
        {
            using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using CancellationTokenSource timeout = new(SoakConnection.Timeout);
            await client.ConnectAsync(server.LocalEndPoint, timeout.Token).ConfigureAwait(false);
            await client.SendAsync(new byte[] { 1 }, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            client.Shutdown(SocketShutdown.Send);
            byte[] echoed = new byte[2];
            while (await client.ReceiveAsync(echoed, SocketFlags.None, timeout.Token).ConfigureAwait(false) > 0)
            {
            }

            await server.StopAsync().ConfigureAwait(false);
        }
    }

    /// <summary>What the listening server holds before any client, and the connections that fit under the open-files limit.</summary>
    private async Task<SoakStart> MeasureStartAsync(SockNotifyMeter meter)
    {
        int descriptors = ProcessFigures.OpenDescriptors();
        long? limit = ProcessFigures.OpenFilesLimit();
        int connections = plan.Connections;
        while (connections > 1 && !SoakBounds.Fits(connections, descriptors, limit))
        {
            connections--;
        }

        if (connections < plan.Connections)
        {
            await log.WriteLineAsync(string.Create(CultureInfo.InvariantCulture,
                $"note: the open-files soft limit is {limit:N0}; {plan.Connections:N0} connections may need {SoakBounds.MaxDescriptorsFor(plan.Connections, descriptors):N0} "
                + $"descriptors ({descriptors} open at start, two per connection for client and server side, and N + 64 for closes a saturated server "
                + $"has not processed yet), so the soak runs {connections:N0} connections. Raise the limit (ulimit -n) to run more.")).ConfigureAwait(false);
        }

        return new SoakStart(connections, descriptors, ProcessFigures.OpenKernelObjects(), meter.Read());
    }

    /// <summary>The clients' part: churns until the duration is over or something failed; returns the failures.</summary>
    private async Task<IReadOnlyList<string>> ChurnAsync(IPEndPoint server, SoakStart start, SoakTally tally, SockNotifyMeter meter)
    {
        using CancellationTokenSource stopping = new();
        using CancellationTokenSource abort = new();
        Stopwatch clock = Stopwatch.StartNew();
        using SemaphoreSlim awaitingAccept = new(MaxAwaitingAccept);
        SoakShared shared = new(server, tally, awaitingAccept, stopping.Token, abort.Token);
        Task[] clients = [.. Enumerable.Range(0, start.Connections).Select(i => Task.Run(() => new SoakClient(shared, i, plan.Seed).RunAsync()))];

        List<string> failures = [];
        List<SoakFigures> warmUp = [];
        SoakBounds? bounds = null;
        SoakFigures previous = default;
        foreach (TimeSpan time in SampleTimes())
        {
            TimeSpan wait = time - clock.Elapsed;
            if (wait > TimeSpan.Zero && await Task.WhenAny(Task.Delay(wait), tally.Failed).ConfigureAwait(false) == tally.Failed)
            {
                break;
            }

            SoakFigures figures = Sample(clock.Elapsed, tally, meter);
            string label = time == plan.WarmUp ? "warm-up" : time == plan.Duration ? "end" : Seconds(time);
            await log.WriteLineAsync(figures.Format(label)).ConfigureAwait(false);
            if (bounds is not null)
            {
                failures.AddRange(bounds.Check(previous, figures));
                if (failures.Count > 0)
                {
                    break;
                }
            }
            else
            {
                warmUp.Add(figures);
                if (time == plan.WarmUp)
                {
                    bounds = SoakBounds.After(start, warmUp);
                    foreach (string line in bounds.Describe())
                    {
                        await log.WriteLineAsync(line).ConfigureAwait(false);
                    }
                }
            }

            previous = figures;
        }

        await stopping.CancelAsync().ConfigureAwait(false);
        if (failures.Count > 0 || tally.Failure is not null)
        {
            await abort.CancelAsync().ConfigureAwait(false);
        }

        Task drained = Task.WhenAll(clients);
        if (await Task.WhenAny(drained, Task.Delay(DrainTimeout)).ConfigureAwait(false) != drained)
        {
            failures.Add($"{clients.Count(c => !c.IsCompleted)} clients did not finish their last connection within {DrainTimeout.TotalSeconds:0} s of the end");
        }

        // A client that threw met something its connection does not expect: a failure too, with what it was.
        failures.AddRange(clients.Where(c => c.IsFaulted).Select(c => $"a client failed: {c.Exception!.InnerException}").Take(3));
        if (tally.Failure is { } failure)
        {
            failures.Insert(0, failure);
        }

        return failures;
    }

    /// <summary>Once every client has left: whether the server is back to what it held at start; returns what it holds beyond that.</summary>
    private Task<IReadOnlyList<string>> IdleAsync(SoakStart start, SockNotifyMeter meter) => SettleAsync(
        SettleTimeout,
        () => SoakBounds.CheckIdle(start, ProcessFigures.OpenKernelObjects(), meter.Read()),
        elapsed =>
        {
            SockNotifyFigures figures = meter.Read();
            return $"idle:    {ProcessFigures.OpenKernelObjects()} sockets and kernel objects ({start.KernelObjects} at start), "
                + $"registrations {figures.Registrations} ({start.SockNotify.Registrations}), operations {figures.Operations} ({start.SockNotify.Operations}), "
                + string.Create(CultureInfo.InvariantCulture, $"lent {figures.BuffersLent}, {elapsed.TotalSeconds:0.0} s after the last client left");
        });

    /// <summary>Once the server has stopped: whether it released everything; returns what is still held.</summary>
    private Task<IReadOnlyList<string>> ReleasedAsync(int kernelObjectsBeforeServer, SockNotifyMeter meter, TimeSpan timeout) => SettleAsync(
        timeout,
        () => SoakBounds.CheckReleased(kernelObjectsBeforeServer, ProcessFigures.OpenKernelObjects(), meter.Read()),
        elapsed =>
        {
            SockNotifyFigures left = meter.Read();
            return $"released: {ProcessFigures.OpenKernelObjects()} sockets and kernel objects ({kernelObjectsBeforeServer} before the server started), "
                + $"SockNotify ports {left.Ports}, registrations {left.Registrations}, operations {left.Operations}, "
                + string.Create(CultureInfo.InvariantCulture, $"lent {left.BuffersLent}, {elapsed.TotalSeconds:0.0} s after the stop");
        });

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for <paramref name="check"/> to find nothing held (the last closes and the
    /// teardown finish on other threads), then logs <paramref name="describe"/>'s line; returns what is still held.
    /// </summary>
    private async Task<IReadOnlyList<string>> SettleAsync(TimeSpan timeout, Func<IReadOnlyList<string>> check, Func<TimeSpan, string> describe)
    {
        Stopwatch clock = Stopwatch.StartNew();
        IReadOnlyList<string> held;
        while ((held = check()).Count > 0 && clock.Elapsed < timeout)
        {
            await Task.Delay(100).ConfigureAwait(false);
        }

        await log.WriteLineAsync(describe(clock.Elapsed)).ConfigureAwait(false);
        return held;
    }

    /// <summary>Every interval, the warm-up's end and the end, in order.</summary>
    private SortedSet<TimeSpan> SampleTimes()
    {
        SortedSet<TimeSpan> times = [plan.WarmUp, plan.Duration];
        for (TimeSpan time = plan.Interval; time < plan.Duration; time += plan.Interval)
        {
            times.Add(time);
        }

        return times;
    }

    private static SoakFigures Sample(TimeSpan elapsed, SoakTally tally, SockNotifyMeter meter)
    {
        // The live heap, not the garbage the churn left since the last collection: that is what a leak makes grow.
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true);
        long heap = GC.GetTotalMemory(forceFullCollection: false);
        return new SoakFigures(elapsed, tally.Open, tally.Completed, tally.Reset, tally.BytesVerified,
            ProcessFigures.OpenDescriptors(), ProcessFigures.ResidentBytes(), heap, meter.Read());
    }

    private static string Seconds(TimeSpan time) => string.Create(CultureInfo.InvariantCulture, $"{time.TotalSeconds:0.#} s");

    private static string Name(CompletionPortBackend backend) => backend == CompletionPortBackend.IoUring ? "io_uring" : "epoll";
}
