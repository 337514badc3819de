using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using ScottPlot;
using SockNotify.Cli.Http;
using Spectre.Console;

namespace SockNotify.Cli.Bench;

/// <summary>
/// <c>socknotify bench http</c>: Kestrel's Sockets transport against SockNotify's on TechEmpower's JSON and pipelined
/// plaintext tests, with wrk as the load: requests/s, latency, and the server's CPU time per request.
/// </summary>
internal static class HttpBenchCommand
{
    public static Command Create()
    {
        HttpBenchOptions options = new();
        Command command = new("http", "Compare Kestrel's Sockets transport with UseSockNotify() under wrk: requests/s, latency and server CPU per request.");
        options.AddTo(command);
        command.SetAction((parsed, _) => RunAsync(options.Plan(parsed)));
        return command;
    }

    private static async Task<int> RunAsync(HttpBenchPlan plan)
    {
        // Before anything starts: without wrk there is nothing to measure.
        if (Wrk.Find() is not { } wrk)
        {
            await Console.Error.WriteLineAsync($"socknotify: {Wrk.InstallHint}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        DateTimeOffset started = DateTimeOffset.UtcNow;
        HttpBenchRunner runner = new(plan, wrk, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"));
        IReadOnlyList<HttpBenchRow> rows = [];
        IReadOnlyList<IReadOnlyList<HttpBenchRow>> rounds = [];
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                ProgressTask task = progress.AddTask("bench http", maxValue: runner.Steps);
                (rows, rounds) = await runner.RunAsync(steps => task.Increment(steps)).ConfigureAwait(false);
            }).ConfigureAwait(false);

        AnsiConsole.MarkupLine(
            $"Medians of {plan.Rounds} round(s); server pinned to CPU 0, wrk ({plan.WrkThreads} thread(s)) to CPU 1; {plan.Connections} connections, "
            + $"{plan.Duration.TotalSeconds:0.#} s each after {plan.Warmup.TotalSeconds:0.#} s of warm-up; plaintext pipelined {plan.Pipeline}.");
        AnsiConsole.Write(HttpBenchTable.Render(rows));
        Directory.CreateDirectory(plan.OutputDirectory);
        HttpBenchReport report = new(started, Environment.MachineName, plan, rows, rounds, runner.Notes);
        string json = Path.Combine(plan.OutputDirectory, "bench-http.json");
        await File.WriteAllTextAsync(json, JsonSerializer.Serialize(report, HttpBenchReportJson.Default.HttpBenchReport)).ConfigureAwait(false);
        IReadOnlyList<string> charts = HttpBenchTable.SaveCharts(rows, plan.OutputDirectory);
        AnsiConsole.MarkupLine($"Report: {Markup.Escape(json)}; charts: {Markup.Escape(string.Join(", ", charts))}");
        foreach (string note in runner.Notes)
        {
            AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
        }

        // Every run of every round must be clean, not only the medians' rows: one error anywhere fails the bench.
        return rows.Count > 0 && rounds.All(round => round.All(r => r.Succeeded)) ? ExitCodes.Success : ExitCodes.Failure;
    }
}

/// <summary>The options of <c>bench http</c> and the plan they make, apart from the command so that tests can parse them.</summary>
internal sealed class HttpBenchOptions
{
    private readonly Option<string[]> _transports = ListOf("--transports", "Transports to compare", TechEmpowerApp.Transports, TechEmpowerApp.Transports);
    private readonly Option<string[]> _tests = ListOf("--tests", "Tests to run", HttpBenchRunner.TestNames, HttpBenchRunner.TestNames);
    private readonly Option<int> _connections = CommandOptions.Positive("--connections", "wrk's connections. Defaults to 256.", 256, max: 16_384);
    private readonly Option<int> _pipeline = CommandOptions.Positive("--pipeline", "Requests the plaintext test pipelines per connection. Defaults to 16.", 16, max: 256);
    private readonly Option<int> _wrkThreads = CommandOptions.Positive("--wrk-threads", "wrk's threads (all on CPU 1). Defaults to 1.", 1, max: 64);
    private readonly Option<CompletionPortBackend> _backend = CommandOptions.Backend("The socknotify transport's backend. Defaults to auto.");
    private readonly Option<TimeSpan> _warmup = WholeSeconds("--warmup", "Warm-up run per test and transport, dropped. Defaults to 2s.", TimeSpan.FromSeconds(2));
    private readonly Option<TimeSpan> _duration = WholeSeconds("--duration", "Measured run per test and transport. Defaults to 10s.", TimeSpan.FromSeconds(10));
    private readonly Option<int> _rounds = CommandOptions.Positive("--repeat", "Rounds of every transport; each figure is the median over them. Defaults to 3.", 3, max: 20);
    private readonly Option<string> _output = new("--out") { Description = "Folder for the JSON report and the charts. Defaults to results/.", DefaultValueFactory = _ => "results" };

    public void AddTo(Command command)
    {
        foreach (Option option in new Option[] { _transports, _tests, _connections, _pipeline, _wrkThreads, _backend, _warmup, _duration, _rounds, _output })
        {
            command.Options.Add(option);
        }
    }

    public HttpBenchPlan Plan(ParseResult parsed) => new(
        parsed.GetValue(_transports)!, parsed.GetValue(_tests)!, parsed.GetValue(_connections), parsed.GetValue(_pipeline),
        parsed.GetValue(_wrkThreads), parsed.GetValue(_backend), parsed.GetValue(_warmup), parsed.GetValue(_duration),
        parsed.GetValue(_rounds), Path.GetFullPath(parsed.GetValue(_output)!));

    /// <summary>A comma-separated list of names among <paramref name="allowed"/>, in the order given.</summary>
    private static Option<string[]> ListOf(string name, string what, string[] allowed, string[] defaults) => new(name)
    {
        Description = $"{what}, comma-separated, among {string.Join(",", allowed)}. Defaults to {string.Join(",", defaults)}.",
        DefaultValueFactory = _ => defaults,
        CustomParser = result =>
        {
            string[] names = CommandOptions.SplitList(result, name);
            foreach (string bad in names.Where(n => n.Length > 0 && !allowed.Contains(n)))
            {
                result.AddError($"{name}: unknown '{bad}'; one of {string.Join(", ", allowed)}.");
            }

            return [.. names.Distinct()];
        },
    };

    /// <summary>A duration in whole seconds (wrk takes no fraction), from 1s to an hour.</summary>
    private static Option<TimeSpan> WholeSeconds(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            string text = result.Tokens.Single().Value;
            if (CommandOptions.TryParseDuration(text, out TimeSpan value) && value >= TimeSpan.FromSeconds(1)
                && value <= TimeSpan.FromHours(1) && value.Ticks % TimeSpan.TicksPerSecond == 0)
            {
                return value;
            }

            result.AddError($"{name}: '{text}' is not a whole number of seconds from 1s to an hour, such as 10s or 2m (wrk takes no fraction).");
            return default;
        },
    };
}

/// <summary>The table and the charts of <c>bench http</c>, each transport against the Sockets transport of the same run.</summary>
internal static class HttpBenchTable
{
    public static Table Render(IReadOnlyList<HttpBenchRow> rows)
    {
        Table table = new Table().AddColumns(
            "Test", "Transport", "Conns", "Pipeline", "Req/s", "vs sockets", "p50 ms", "p99 ms",
            "Server CPU µs/req", "vs sockets", "Errors", "CPU 1 busy");
        foreach (HttpBenchRow row in rows)
        {
            HttpBenchRow? sockets = rows.FirstOrDefault(r => r.Test == row.Test && r.Transport == TechEmpowerApp.Sockets);
            table.AddRow(
                row.Test,
                row.Transport,
                Format(row.Connections, "N0"),
                Format(row.Pipeline, "N0"),
                Format(row.RequestsPerSecond, "N0"),
                Ratio(row.RequestsPerSecond, sockets?.RequestsPerSecond),
                row.Load.P50Microseconds is { } p50 ? Format(p50 / 1000, "N2") : "n/a",
                row.Load.P99Microseconds is { } p99 ? Format(p99 / 1000, "N2") : "n/a",
                Format(row.ServerCpuMicrosecondsPerRequest, "N2"),
                Ratio(row.ServerCpuMicrosecondsPerRequest, sockets?.ServerCpuMicrosecondsPerRequest),
                row.Load.Error is null ? Format(row.Load.Errors, "N0") : "failed",
                $"{row.LoadCpuBusy.ToString("P0", CultureInfo.InvariantCulture)}");
        }

        return table;
    }

    public static IReadOnlyList<string> SaveCharts(IReadOnlyList<HttpBenchRow> rows, string directory) => rows.Count == 0
        ? []
        :
        [
            Save(rows, directory, "http-requests-per-second.png", "Requests per second (higher is better)", r => r.RequestsPerSecond),
            Save(rows, directory, "http-cpu-per-request.png", "Server CPU µs per request (lower is better)", r => r.ServerCpuMicrosecondsPerRequest),
        ];

    /// <summary>Bars per transport, grouped by test.</summary>
    private static string Save(IReadOnlyList<HttpBenchRow> rows, string directory, string file, string title, Func<HttpBenchRow, double> value)
    {
        string[] transports = [.. rows.Select(r => r.Transport).Distinct()];
        string[] tests = [.. rows.Select(r => r.Test).Distinct()];
        Plot plot = new();
        for (int t = 0; t < transports.Length; t++)
        {
            List<Bar> bars = [];
            for (int g = 0; g < tests.Length; g++)
            {
                if (rows.FirstOrDefault(r => r.Transport == transports[t] && r.Test == tests[g]) is { } row)
                {
                    bars.Add(new Bar { Position = (g * (transports.Length + 1)) + t, Value = value(row), FillColor = Colors.Category10[t % 10] });
                }
            }

            plot.Add.Bars(bars).LegendText = transports[t];
        }

        Tick[] ticks = [.. tests.Select((test, g) => new Tick((g * (transports.Length + 1)) + ((transports.Length - 1) / 2.0),
            test == HttpBenchRunner.Plaintext ? $"{test} (pipelined {rows.First(r => r.Test == test).Pipeline})" : test))];
        return BenchCharts.Finish(plot, ticks, title, Path.Combine(directory, file));
    }

    private static string Ratio(double value, double? baseline) =>
        baseline is > 0 ? (value / baseline.Value).ToString("0.00x", CultureInfo.InvariantCulture) : "";

    private static string Format(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
