using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization;
using SockNotify.Cli.Echo;

namespace SockNotify.Cli.Bench;

/// <summary>What the bench is asked to run.</summary>
internal sealed record BenchPlan(
    IReadOnlyList<string> Engines,
    IReadOnlyList<int> Connections,
    int Size,
    int Depth,
    int ServerThreads,
    TimeSpan Warmup,
    TimeSpan Duration,
    int IdleConnections,
    int Rounds,
    string OutputDirectory);

/// <summary>One engine under one load.</summary>
internal sealed record BenchRow(
    string Engine,
    int Connections,
    LoadResult Load,
    double ServerCpuSeconds,
    double ServerCpuSecondsPerMillion,
    double? AllocatedBytesPerMessage,
    double? IdleBytesPerConnection,
    double? IdleManagedBytesPerConnection);

/// <summary>A whole run, as the JSON file holds it: the medians, and every round's own rows.</summary>
internal sealed record BenchReport(
    DateTimeOffset Started, string Machine, BenchPlan Plan, IReadOnlyList<BenchRow> Rows, IReadOnlyList<IReadOnlyList<BenchRow>> Rounds, IReadOnlyList<string> Notes);

[JsonSerializable(typeof(BenchReport))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class BenchReportJson : JsonSerializerContext;

/// <summary>
/// Runs every engine as its own pinned process (CPU 0) against the load generator (CPU 1), one engine at a time.
/// Server CPU is read from /proc at the load generator's "measuring" and "done" lines, so warm-up does not count.
/// </summary>
internal sealed class BenchRunner(BenchPlan plan, Action<string> report)
{
    public static readonly string[] EngineNames = [.. EchoEngines.Names, .. CBaseline.All.Select(c => c.Engine)];

    /// <summary>What a bench compares unless told: every engine but the Kestrel transport's, which the README's figures do not have yet.</summary>
    public static readonly string[] DefaultEngineNames = [.. EngineNames.Where(name => name != EchoEngines.KestrelSockNotify)];

    private const int ServerCpu = 0;
    private const int LoadCpu = 1;

    private readonly List<string> _notes = [];

    public IReadOnlyList<string> Notes => _notes;

    /// <summary>
    /// Runs <see cref="BenchPlan.Rounds"/> rounds of every engine, interleaved so that the machine's slow moments
    /// spread over all engines, and returns each figure's median with every round's rows.
    /// </summary>
    public async Task<(IReadOnlyList<BenchRow> Medians, IReadOnlyList<IReadOnlyList<BenchRow>> Rounds)> RunAsync(Action<int> advance)
    {
        List<IReadOnlyList<BenchRow>> rounds = [];
        for (int round = 0; round < plan.Rounds; round++)
        {
            rounds.Add(await RunRoundAsync(advance).ConfigureAwait(false));
        }

        // A failed round says nothing about an engine's speed: it is reported (notes, exit code) and left out of the
        // medians, unless every round failed.
        List<BenchRow> medians = [];
        foreach (IGrouping<(string Engine, int Connections), BenchRow> runs in rounds.SelectMany(r => r).GroupBy(r => (r.Engine, r.Connections)))
        {
            BenchRow[] succeeded = [.. runs.Where(r => r.Load.Error is null)];
            medians.Add(Median(succeeded.Length > 0 ? succeeded : [.. runs]));
        }

        return (medians, rounds);
    }

    private static BenchRow Median(BenchRow[] runs)
    {
        BenchRow first = runs[0];
        LoadResult load = first.Load with
        {
            Messages = (long)Median(runs, r => r.Load.Messages),
            MessagesPerSecond = Median(runs, r => r.Load.MessagesPerSecond),
            P50Microseconds = Median(runs, r => r.Load.P50Microseconds),
            P99Microseconds = Median(runs, r => r.Load.P99Microseconds),
            P999Microseconds = Median(runs, r => r.Load.P999Microseconds),
            CpuSeconds = Median(runs, r => r.Load.CpuSeconds),
            Error = runs.Select(r => r.Load.Error).FirstOrDefault(e => e is not null),
        };
        return new BenchRow(
            first.Engine,
            first.Connections,
            load,
            Median(runs, r => r.ServerCpuSeconds),
            Median(runs, r => r.ServerCpuSecondsPerMillion),
            runs.All(r => r.AllocatedBytesPerMessage is not null) ? Median(runs, r => r.AllocatedBytesPerMessage!.Value) : null,
            runs.All(r => r.IdleBytesPerConnection is not null) ? Median(runs, r => r.IdleBytesPerConnection!.Value) : null,
            runs.All(r => r.IdleManagedBytesPerConnection is not null) ? Median(runs, r => r.IdleManagedBytesPerConnection!.Value) : null);
    }

    private static double Median(BenchRow[] runs, Func<BenchRow, double> figure)
    {
        double[] values = [.. runs.Select(figure).Order()];
        return values.Length % 2 == 1 ? values[values.Length / 2] : (values[(values.Length / 2) - 1] + values[values.Length / 2]) / 2;
    }

    private async Task<IReadOnlyList<BenchRow>> RunRoundAsync(Action<int> advance)
    {
        if (!Processes.CanPin)
        {
            Note("server and load generator were not pinned to CPUs (taskset is missing or the machine has one CPU)");
        }

        if (typeof(BenchRunner).Assembly.GetCustomAttributes(typeof(DebuggableAttribute), false) is [DebuggableAttribute { IsJITOptimizerDisabled: true }])
        {
            Note("this is a Debug build: the JIT does not optimize, so CPU and allocation figures are not representative (use -c Release)");
        }

        List<BenchRow> rows = [];
        foreach (string engine in plan.Engines)
        {
            IReadOnlyList<string>? command = ServerCommand(engine);
            if (command is null)
            {
                advance(plan.Connections.Count + 1);
                continue;
            }

            using ServerProcess server = await ServerProcess.StartAsync(command, ServerCpu, reportsAllocations: CBaseline.Named(engine) is null).ConfigureAwait(false);
            foreach (int connections in plan.Connections)
            {
                report($"{engine}: {connections} connections");
                rows.Add(await MeasureAsync(engine, server, connections).ConfigureAwait(false));
                advance(1);
            }

            if (plan.IdleConnections > 0)
            {
                report($"{engine}: {plan.IdleConnections} idle connections");
                try
                {
                    (double resident, double? managed) = await MeasureIdleMemoryAsync(server).ConfigureAwait(false);
                    int last = rows.FindLastIndex(r => r.Engine == engine);
                    rows[last] = rows[last] with { IdleBytesPerConnection = resident, IdleManagedBytesPerConnection = managed };
                }
                catch (Exception e) when (e is SocketException or InvalidOperationException)
                {
                    Note($"{engine}: idle memory not measured: {e.Message}");
                }
            }

            advance(1);
            string stopped = await server.StopAsync().ConfigureAwait(false);
            report($"{engine}: {stopped}");
        }

        return rows;
    }

    private async Task<BenchRow> MeasureAsync(string engine, ServerProcess server, int connections)
    {
        IReadOnlyList<string> load = Processes.Self(
            "load", "--server", server.EndPoint.ToString(),
            "--connections", Invariant(connections), "--size", Invariant(plan.Size), "--depth", Invariant(plan.Depth),
            "--warmup", Milliseconds(plan.Warmup), "--duration", Milliseconds(plan.Duration), "--hold");
        using Process generator = Processes.Start(load, LoadCpu);
        Task<string> errors = generator.StandardError.ReadToEndAsync();
        double? cpuAtStart = null, cpuAtEnd = null;
        long? allocatedAtStart = null, allocatedAtEnd = null;
        LoadResult? result = null;
        while (await generator.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            switch (line)
            {
                case LoadGenerator.MeasuringLine:
                    cpuAtStart = server.CpuSeconds();
                    allocatedAtStart = await server.AllocatedBytesAsync().ConfigureAwait(false);
                    break;
                case LoadGenerator.DoneLine:
                    cpuAtEnd = server.CpuSeconds();
                    allocatedAtEnd = await server.AllocatedBytesAsync().ConfigureAwait(false);
                    // Sampled: now the generator may close its connections (their teardown is not per-message work).
                    await generator.StandardInput.WriteLineAsync().ConfigureAwait(false);
                    await generator.StandardInput.FlushAsync().ConfigureAwait(false);
                    break;
                default:
                    result = JsonSerializer.Deserialize(line, LoadResultJson.Default.LoadResult);
                    break;
            }
        }

        await generator.WaitForExitAsync().ConfigureAwait(false);
        result ??= new LoadResult(connections, plan.Size, plan.Depth, 0, 0, 0, 0, 0, 0, 0,
            $"the load generator printed no result: {await errors.ConfigureAwait(false)}");
        if (result.Error is null && (cpuAtStart is null || cpuAtEnd is null))
        {
            result = result with { Error = "the server was not sampled at both ends of the measurement" };
        }

        if (result.Error is not null)
        {
            Note($"{engine} at {connections} connections: {result.Error}");
        }

        double serverCpu = cpuAtEnd - cpuAtStart ?? 0;
        return new BenchRow(
            engine,
            connections,
            result,
            serverCpu,
            result.Messages > 0 ? serverCpu / result.Messages * 1e6 : 0,
            allocatedAtStart is { } start && allocatedAtEnd is { } end && result.Messages > 0 ? (double)(end - start) / result.Messages : null,
            null,
            null);
    }

    /// <summary>
    /// Resident memory growth of the server with many connections that each echoed one message, then idle. A .NET
    /// server collects its garbage before each reading, so that neither the load runs' garbage nor the allocation
    /// budget of the next collection is counted as connection state.
    /// </summary>
    private async Task<(double Resident, double? Managed)> MeasureIdleMemoryAsync(ServerProcess server)
    {
        long? managedBefore = await server.CollectGarbageAsync().ConfigureAwait(false);
        long before = server.ResidentBytes();
        List<Socket> idle = new(plan.IdleConnections);
        try
        {
            byte[] message = new byte[plan.Size];
            byte[] echo = new byte[plan.Size];
            for (int i = 0; i < plan.IdleConnections; i++)
            {
                Socket socket = new(server.EndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10_000, SendTimeout = 10_000 };
                idle.Add(socket);
                socket.Connect(server.EndPoint);
                socket.Send(message);
                for (int received = 0; received < echo.Length;)
                {
                    int count = socket.Receive(echo.AsSpan(received));
                    received += count > 0 ? count : throw new InvalidOperationException($"the server closed idle connection {i}");
                }
            }

            await Task.Delay(500).ConfigureAwait(false); // Let the server take the last echoes' notifications.
            long? managedAfter = await server.CollectGarbageAsync().ConfigureAwait(false);
            double resident = (double)(server.ResidentBytes() - before) / plan.IdleConnections;
            return (resident, managedAfter - managedBefore is { } managed ? (double)managed / plan.IdleConnections : null);
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
        }
    }

    private IReadOnlyList<string>? ServerCommand(string engine)
    {
        if (CBaseline.Named(engine) is not { } baseline)
        {
            return Processes.Self("echo", "--engine", engine, "--port", "0", "--threads", Invariant(plan.ServerThreads), "--stats");
        }

        string? binary = baseline.Build(plan.OutputDirectory, out string? why);
        if (binary is null)
        {
            Note($"{engine} skipped: {why}");
            return null;
        }

        return [binary, "127.0.0.1", "0"];
    }

    private void Note(string note)
    {
        _notes.Add(note);
        report(note);
    }

    private static string Invariant(int value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    private static string Milliseconds(TimeSpan value) => $"{value.TotalMilliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}ms";
}
