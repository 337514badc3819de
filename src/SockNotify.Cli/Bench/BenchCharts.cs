using ScottPlot;

namespace SockNotify.Cli.Bench;

/// <summary>Bar charts of the bench: throughput and server CPU per message, engines grouped by connection count.</summary>
internal static class BenchCharts
{
    public static IReadOnlyList<string> Save(IReadOnlyList<BenchRow> rows, string directory)
    {
        if (rows.Count == 0)
        {
            return [];
        }

        return
        [
            Save(rows, directory, "throughput.png", "Messages per second (higher is better)", r => r.Load.MessagesPerSecond),
            Save(rows, directory, "cpu-per-message.png", "Server CPU seconds per million messages (lower is better)", r => r.ServerCpuSecondsPerMillion),
        ];
    }

    private static string Save(IReadOnlyList<BenchRow> rows, string directory, string file, string title, Func<BenchRow, double> value)
    {
        string[] engines = [.. rows.Select(r => r.Engine).Distinct()];
        int[] loads = [.. rows.Select(r => r.Connections).Distinct()];
        Plot plot = new();
        List<Tick> ticks = [];
        for (int e = 0; e < engines.Length; e++)
        {
            List<Bar> bars = [];
            for (int l = 0; l < loads.Length; l++)
            {
                BenchRow? row = rows.FirstOrDefault(r => r.Engine == engines[e] && r.Connections == loads[l]);
                if (row is null)
                {
                    continue;
                }

                double position = (l * (engines.Length + 1)) + e;
                bars.Add(new Bar { Position = position, Value = value(row), FillColor = Colors.Category10[e % 10] });
            }

            plot.Add.Bars(bars).LegendText = engines[e];
        }

        for (int l = 0; l < loads.Length; l++)
        {
            ticks.Add(new Tick((l * (engines.Length + 1)) + ((engines.Length - 1) / 2.0), $"{loads[l]} connections"));
        }

        return Finish(plot, [.. ticks], title, Path.Combine(directory, file));
    }

    /// <summary>Puts the group labels under the bars, titles the chart and writes it as a PNG; returns its path.</summary>
    public static string Finish(Plot plot, Tick[] groups, string title, string path)
    {
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(groups);
        plot.Axes.Margins(bottom: 0);
        plot.Title(title);
        plot.ShowLegend(Alignment.UpperRight);
        plot.SavePng(path, 900, 500);
        return path;
    }
}
