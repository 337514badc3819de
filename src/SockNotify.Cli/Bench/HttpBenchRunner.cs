using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Serialization;
using SockNotify.Cli.Http;

namespace SockNotify.Cli.Bench;

/// <summary>What <c>bench http</c> is asked to run.</summary>
internal sealed record HttpBenchPlan(
    IReadOnlyList<string> Transports,
    IReadOnlyList<string> Tests,
    int Connections,
    int Pipeline,
    int WrkThreads,
    CompletionPortBackend Backend,
    TimeSpan Warmup,
    TimeSpan Duration,
    int Rounds,
    string OutputDirectory);

/// <summary>One transport under one test: wrk's figures and the server's CPU time over the measured run.</summary>
internal sealed record HttpBenchRow(
    string Test,
    string Transport,
    int Connections,
    int Pipeline,
    WrkResult Load,
    double RequestsPerSecond,
    double ServerCpuSeconds,
    double ServerCpuMicrosecondsPerRequest,
    double LoadCpuBusy)
{
    /// <summary>Whether the run completed with no socket error and no response other than 2xx or 3xx.</summary>
    public bool Succeeded => Load.Error is null && Load.Errors == 0 && Load.Requests > 0;
}

/// <summary>A whole run, as bench-http.json holds it: the medians, and every round's own rows.</summary>
internal sealed record HttpBenchReport(
    DateTimeOffset Started, string Machine, HttpBenchPlan Plan, IReadOnlyList<HttpBenchRow> Rows,
    IReadOnlyList<IReadOnlyList<HttpBenchRow>> Rounds, IReadOnlyList<string> Notes);

[JsonSerializable(typeof(HttpBenchReport))]
[JsonSourceGenerationOptions(WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals)]
internal sealed partial class HttpBenchReportJson : JsonSerializerContext;

/// <summary>
/// Runs <c>socknotify http</c> on each transport as its own process pinned to CPU 0 and wrk pinned to CPU 1, one
/// transport at a time, the transports interleaved within each round (and their order reversed every other round, so
/// that neither always runs first after the machine was idle). Server CPU is read from /proc/PID/stat just before and
/// just after the measured wrk run, after a warm-up run whose figures are dropped.
/// </summary>
internal sealed class HttpBenchRunner(HttpBenchPlan plan, string wrk, Action<string> report)
{
    public const string Json = "json";
    public const string Plaintext = "plaintext";

    /// <summary>TechEmpower's JSON test (one request at a time per connection) and plaintext test (pipelined).</summary>
    public static readonly string[] TestNames = [Json, Plaintext];

    private const int ServerCpu = 0;
    private const int LoadCpu = 1;

    private readonly List<string> _notes = [];

    public IReadOnlyList<string> Notes => _notes;

    /// <summary>Steps the progress bar counts: a warm-up and a measurement per test, transport and round.</summary>
    public int Steps => plan.Rounds * plan.Transports.Count * plan.Tests.Count;

    /// <summary>Runs every round and returns each figure's median (over the rounds that succeeded) with every round's rows.</summary>
    public async Task<(IReadOnlyList<HttpBenchRow> Medians, IReadOnlyList<IReadOnlyList<HttpBenchRow>> Rounds)> RunAsync(Action<int> advance)
    {
        if (!Processes.CanPin)
        {
            Note("server and wrk were not pinned to CPUs (taskset is missing or the machine has one CPU)");
        }

        if (typeof(HttpBenchRunner).Assembly.GetCustomAttributes(typeof(DebuggableAttribute), false) is [DebuggableAttribute { IsJITOptimizerDisabled: true }])
        {
            Note("this is a Debug build: the JIT does not optimize the server, so its figures are not representative (use -c Release)");
        }

        string script = Wrk.WriteScript(plan.OutputDirectory);
        List<IReadOnlyList<HttpBenchRow>> rounds = [];
        for (int round = 0; round < plan.Rounds; round++)
        {
            IEnumerable<string> order = round % 2 == 0 ? plan.Transports : plan.Transports.Reverse();
            List<HttpBenchRow> rows = [];
            foreach (string transport in order)
            {
                rows.AddRange(await RunTransportAsync(transport, script, advance).ConfigureAwait(false));
            }

            rounds.Add(rows);
        }

        // A failed run says nothing about a transport's speed: it is reported (notes, exit code) and left out of the
        // medians, unless every round failed.
        List<HttpBenchRow> medians = [];
        foreach (string test in plan.Tests)
        {
            foreach (string transport in plan.Transports)
            {
                HttpBenchRow[] runs = [.. rounds.SelectMany(r => r).Where(r => r.Test == test && r.Transport == transport)];
                HttpBenchRow[] succeeded = [.. runs.Where(r => r.Succeeded)];
                if (runs.Length > 0)
                {
                    medians.Add(Median(succeeded.Length > 0 ? succeeded : runs));
                }
            }
        }

        return (medians, rounds);
    }

    /// <summary>Each figure's own median (the rows' figures may come from different rounds); errors are the rounds' sum.</summary>
    public static HttpBenchRow Median(IReadOnlyList<HttpBenchRow> runs)
    {
        HttpBenchRow first = runs[0];
        WrkResult load = first.Load with
        {
            Requests = (long)Median(runs, r => r.Load.Requests),
            Seconds = Median(runs, r => r.Load.Seconds),
            Bytes = (long)Median(runs, r => r.Load.Bytes),
            P50Microseconds = MedianOfKnown(runs, r => r.Load.P50Microseconds),
            P99Microseconds = MedianOfKnown(runs, r => r.Load.P99Microseconds),
            MaxMicroseconds = Median(runs, r => r.Load.MaxMicroseconds),
            ConnectErrors = runs.Sum(r => r.Load.ConnectErrors),
            ReadErrors = runs.Sum(r => r.Load.ReadErrors),
            WriteErrors = runs.Sum(r => r.Load.WriteErrors),
            TimeoutErrors = runs.Sum(r => r.Load.TimeoutErrors),
            StatusErrors = runs.Sum(r => r.Load.StatusErrors),
            Error = runs.Select(r => r.Load.Error).FirstOrDefault(e => e is not null),
        };

        return new HttpBenchRow(
            first.Test, first.Transport, first.Connections, first.Pipeline, load,
            Median(runs, r => r.RequestsPerSecond),
            Median(runs, r => r.ServerCpuSeconds),
            Median(runs, r => r.ServerCpuMicrosecondsPerRequest),
            Median(runs, r => r.LoadCpuBusy));
    }

    private static double Median(IReadOnlyList<HttpBenchRow> runs, Func<HttpBenchRow, double> figure) =>
        MedianOfKnown(runs, r => figure(r)) ?? 0;

    /// <summary>The median of the rounds that have the figure; null if none has.</summary>
    private static double? MedianOfKnown(IReadOnlyList<HttpBenchRow> runs, Func<HttpBenchRow, double?> figure)
    {
        double[] values = [.. runs.Select(figure).OfType<double>().Order()];
        return values.Length == 0 ? null
            : values.Length % 2 == 1 ? values[values.Length / 2] : (values[(values.Length / 2) - 1] + values[values.Length / 2]) / 2;
    }

    /// <summary>One server process for every test of this round: warm-up and measurement per test, then SIGTERM.</summary>
    private async Task<List<HttpBenchRow>> RunTransportAsync(string transport, string script, Action<int> advance)
    {
        List<string> arguments = ["http", "--transport", transport, "--port", "0"];
        if (transport == TechEmpowerApp.SockNotify)
        {
            arguments.AddRange(["--backend", CommandOptions.BackendNames[(int)plan.Backend]]);
        }

        List<HttpBenchRow> rows = [];
        using ServerProcess server = await ServerProcess.StartAsync(Processes.Self([.. arguments]), ServerCpu, reportsAllocations: false).ConfigureAwait(false);
        foreach (string test in plan.Tests)
        {
            int pipeline = test == Plaintext ? plan.Pipeline : 1;
            Uri url = new($"http://{server.EndPoint}/{test}");
            report($"{transport}: {test}, {plan.Connections} connections, pipeline {pipeline}");

            WrkResult warm = await Wrk.RunAsync(wrk, script, url, plan.Connections, plan.WrkThreads, pipeline, plan.Warmup, LoadCpu).ConfigureAwait(false);
            if (warm.Error is not null)
            {
                Note($"{transport} {test} warm-up: {warm.Error}");
            }

            double cpuBefore = server.CpuSeconds();
            (long busyBefore, long totalBefore) = Wrk.CpuTicks(LoadCpu);
            WrkResult load = await Wrk.RunAsync(wrk, script, url, plan.Connections, plan.WrkThreads, pipeline, plan.Duration, LoadCpu).ConfigureAwait(false);
            double serverCpu = server.CpuSeconds() - cpuBefore;
            (long busyAfter, long totalAfter) = Wrk.CpuTicks(LoadCpu);

            HttpBenchRow row = new(
                test, transport, plan.Connections, pipeline, load, load.RequestsPerSecond, serverCpu,
                load.Requests > 0 ? serverCpu / load.Requests * 1e6 : 0,
                totalAfter > totalBefore ? (double)(busyAfter - busyBefore) / (totalAfter - totalBefore) : 0);
            if (!row.Succeeded)
            {
                Note($"{transport} {test}: {load.Error ?? $"{load.Errors.ToString(CultureInfo.InvariantCulture)} error(s) (connect {load.ConnectErrors}, read {load.ReadErrors}, write {load.WriteErrors}, timeout {load.TimeoutErrors}, status {load.StatusErrors})"}");
            }

            rows.Add(row);
            advance(1);
        }

        report($"{transport}: {await server.StopAsync().ConfigureAwait(false)}");
        return rows;
    }

    private void Note(string note)
    {
        _notes.Add(note);
        report(note);
    }
}
