using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SockNotify.Cli.Bench;
using Spectre.Console;

namespace SockNotify.Cli;

/// <summary><c>socknotify bench</c>: every engine side by side under the same load, in one run.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        Option<string[]> engines = new("--engines")
        {
            Description = $"Engines to compare, comma-separated, among {string.Join(",", BenchRunner.EngineNames)}. "
                + $"Defaults to {string.Join(",", BenchRunner.DefaultEngineNames)}.",
            DefaultValueFactory = _ => BenchRunner.DefaultEngineNames,
            CustomParser = result =>
            {
                string[] names = CommandOptions.SplitList(result, "--engines");
                foreach (string engine in names.Where(n => n.Length > 0 && !BenchRunner.EngineNames.Contains(n)))
                {
                    result.AddError($"Unknown engine '{engine}'; one of {string.Join(", ", BenchRunner.EngineNames)}.");
                }

                return names;
            },
        };
        Option<int[]> connections = new("--connections")
        {
            Description = "Connection counts to measure, comma-separated. Defaults to 100,1000.",
            DefaultValueFactory = _ => [100, 1000],
            CustomParser = result =>
            {
                List<int> counts = [];
                foreach (string text in CommandOptions.SplitList(result, "--connections"))
                {
                    if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int count) || count is < 1 or > 9000)
                    {
                        result.AddError($"--connections: '{text}' is not a count from 1 to 9000.");
                        return [];
                    }

                    counts.Add(count);
                }

                return [.. counts];
            },
        };
        Option<int> size = CommandOptions.Positive("--size", "Bytes per message. Defaults to 64.", 64, max: 1024 * 1024);
        Option<int> depth = CommandOptions.Positive("--depth", "Messages in flight per connection. Defaults to 1.", 1, max: 64);
        Option<int> threads = CommandOptions.Positive("--threads", "Server threads of the notify and completion engines. Defaults to 1.", 1, max: 256);
        Option<TimeSpan> warmup = CommandOptions.Duration("--warmup", "Warm-up per measurement. Defaults to 2s.", TimeSpan.FromSeconds(2));
        Option<TimeSpan> duration = CommandOptions.Duration("--duration", "Measured time per engine and load. Defaults to 10s.", TimeSpan.FromSeconds(10));
        Option<int> idle = new("--idle-connections")
        {
            Description = "Idle connections for the memory-per-connection figure (0 skips it). Defaults to 9000.",
            DefaultValueFactory = _ => 9000,
        };
        idle.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 0 or > 9000)
            {
                result.AddError("--idle-connections must be between 0 and 9000.");
            }
        });
        Option<int> rounds = CommandOptions.Positive("--repeat", "Rounds of every engine; each figure is the median over them. Defaults to 3.", 3, max: 20);
        Option<string> output = new("--out") { Description = "Folder for the JSON report and the charts. Defaults to results/.", DefaultValueFactory = _ => "results" };

        Command command = new("bench", "Compare echo engines side by side: throughput, latency, server CPU and memory per message.")
        {
            engines, connections, size, depth, threads, warmup, duration, idle, rounds, output,
        };
        CommandOptions.RefuseTooManyBytesInFlight(command, depth, size);
        command.Subcommands.Add(HttpBenchCommand.Create()); // bench http: the Kestrel transports under wrk.
        command.SetAction((parsed, _) => RunAsync(new BenchPlan(
            parsed.GetValue(engines)!, parsed.GetValue(connections)!, parsed.GetValue(size), parsed.GetValue(depth), parsed.GetValue(threads),
            parsed.GetValue(warmup), parsed.GetValue(duration), parsed.GetValue(idle), parsed.GetValue(rounds), Path.GetFullPath(parsed.GetValue(output)!))));
        return command;
    }

    private static async Task<int> RunAsync(BenchPlan plan)
    {
        DateTimeOffset started = DateTimeOffset.UtcNow;
        BenchRunner runner = new(plan, line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"));
        IReadOnlyList<BenchRow> rows = [];
        IReadOnlyList<IReadOnlyList<BenchRow>> rounds = [];
        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async progress =>
            {
                ProgressTask task = progress.AddTask("bench", maxValue: plan.Rounds * plan.Engines.Count * (plan.Connections.Count + 1));
                (rows, rounds) = await runner.RunAsync(steps => task.Increment(steps)).ConfigureAwait(false);
            }).ConfigureAwait(false);

        AnsiConsole.MarkupLine($"Medians of {plan.Rounds} round(s); server pinned to CPU 0, load generator to CPU 1; {plan.Size} B messages, depth {plan.Depth}, {plan.Duration.TotalSeconds:0.#} s each.");
        AnsiConsole.Write(BenchTable.Render(rows));
        Directory.CreateDirectory(plan.OutputDirectory);
        BenchReport report = new(started, Environment.MachineName, plan, rows, rounds, runner.Notes);
        string json = Path.Combine(plan.OutputDirectory, "bench.json");
        await File.WriteAllTextAsync(json, JsonSerializer.Serialize(report, BenchReportJson.Default.BenchReport)).ConfigureAwait(false);
        IReadOnlyList<string> charts = BenchCharts.Save(rows, plan.OutputDirectory);
        AnsiConsole.MarkupLine($"Report: {Markup.Escape(json)}; charts: {Markup.Escape(string.Join(", ", charts))}");
        foreach (string note in runner.Notes)
        {
            AnsiConsole.MarkupLine($"[yellow]note:[/] {Markup.Escape(note)}");
        }

        return rows.Count > 0 && rows.All(r => r.Load.Error is null) ? ExitCodes.Success : ExitCodes.Failure;
    }
}
