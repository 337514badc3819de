using System.Collections.Concurrent;
using System.CommandLine;
using SockNotify.Samples;
using Spectre.Console;

namespace SockNotify.Cli;

/// <summary><c>socknotify demo [scenario]</c>: runs the seed's scenarios on loopback and shows what happened.</summary>
internal static class DemoCommand
{
    private const string All = "all";
    private const int TranscriptLinesShown = 4;

    public static Command Create()
    {
        Argument<string> scenario = new("scenario")
        {
            Description = "The scenario to run.",
            Arity = ArgumentArity.ZeroOrOne,
            DefaultValueFactory = _ => All,
        };
        scenario.AcceptOnlyFromAmong([.. Scenarios.All.Select(s => s.Name), All]);

        Command command = new("demo", "Run the seed's scenarios on loopback; exit 0 only if every one verified its data.") { scenario };
        command.SetAction(parsed => Run(parsed.GetValue(scenario)!));
        return command;
    }

    private static int Run(string name)
    {
        var selected = Scenarios.All.Where(s => name == All || s.Name == name).ToList();
        List<(ScenarioResult Result, string[] Transcript)> runs = [];
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new SpinnerColumn(), new ElapsedTimeColumn())
            .Start(progress =>
            {
                foreach (var scenario in selected)
                {
                    ProgressTask task = progress.AddTask(scenario.Name, maxValue: 1);
                    task.IsIndeterminate = true;
                    ConcurrentQueue<string> transcript = new();
                    ScenarioResult result;
                    try
                    {
                        result = scenario.Run(transcript.Enqueue);
                    }
                    catch (Exception e) when (e is System.Net.Sockets.SocketException or InvalidOperationException or IOException or InvalidDataException)
                    {
                        result = new ScenarioResult(scenario.Name, false, 0, TimeSpan.Zero, $"{e.GetType().Name}: {e.Message}");
                    }

                    task.IsIndeterminate = false;
                    task.Increment(1);
                    runs.Add((result, [.. transcript]));
                }
            });

        foreach (var (result, transcript) in runs)
        {
            AnsiConsole.MarkupLine($"[bold]{Markup.Escape(result.Name)}[/] ({transcript.Length} transcript lines)");
            IEnumerable<string> shown = transcript.Length <= 2 * TranscriptLinesShown
                ? transcript
                : [.. transcript.Take(TranscriptLinesShown), "...", .. transcript.TakeLast(TranscriptLinesShown)];
            foreach (string line in shown)
            {
                AnsiConsole.MarkupLine($"  [grey]{Markup.Escape(line)}[/]");
            }
        }

        Table table = new Table().AddColumns("Scenario", "Result", "Messages", "Time", "Detail");
        foreach (var (result, _) in runs)
        {
            table.AddRow(
                Markup.Escape(result.Name),
                result.Verified ? "[green]verified[/]" : "[red]FAILED[/]",
                result.Messages.ToString(System.Globalization.CultureInfo.InvariantCulture),
                $"{result.Elapsed.TotalMilliseconds:F0} ms",
                Markup.Escape(result.Detail));
        }

        AnsiConsole.Write(table);
        bool verified = runs.All(r => r.Result.Verified);
        AnsiConsole.MarkupLine(verified ? "[green]All scenarios verified.[/]" : "[red]Some scenarios failed.[/]");
        return verified ? ExitCodes.Success : ExitCodes.Failure;
    }
}
