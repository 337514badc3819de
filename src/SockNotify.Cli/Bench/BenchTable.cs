using System.Globalization;
using Spectre.Console;
using SockNotify.Cli.Echo;

namespace SockNotify.Cli.Bench;

/// <summary>The bench's table: every engine and load, with ratios to System.Net.Sockets and to both C baselines of the same run.</summary>
internal static class BenchTable
{
    public static Table Render(IReadOnlyList<BenchRow> rows)
    {
        Table table = new Table().AddColumns(
            "Engine", "Conns", "Msg/s", "vs sockets", "p50 µs", "p99 µs", "p99.9 µs",
            "Server CPU s/M msg", "vs c-epoll", "vs c-uring", "Alloc B/msg", "Idle RSS B/conn", "Idle heap B/conn", "Load CPU");
        foreach (BenchRow row in rows)
        {
            BenchRow? sockets = rows.FirstOrDefault(r => r.Engine == EchoEngines.Sockets && r.Connections == row.Connections);
            BenchRow? epoll = rows.FirstOrDefault(r => r.Engine == CBaseline.Epoll.Engine && r.Connections == row.Connections);
            BenchRow? uring = rows.FirstOrDefault(r => r.Engine == CBaseline.Uring.Engine && r.Connections == row.Connections);
            table.AddRow(
                row.Engine,
                Format(row.Connections, "N0"),
                Format(row.Load.MessagesPerSecond, "N0"),
                Ratio(row.Load.MessagesPerSecond, sockets?.Load.MessagesPerSecond),
                Format(row.Load.P50Microseconds, "N0"),
                Format(row.Load.P99Microseconds, "N0"),
                Format(row.Load.P999Microseconds, "N0"),
                Format(row.ServerCpuSecondsPerMillion, "N2"),
                Ratio(row.ServerCpuSecondsPerMillion, epoll?.ServerCpuSecondsPerMillion),
                Ratio(row.ServerCpuSecondsPerMillion, uring?.ServerCpuSecondsPerMillion),
                row.AllocatedBytesPerMessage is { } allocated ? Format(allocated, "N2") : "n/a",
                row.IdleBytesPerConnection is { } idle ? Format(idle, "N0") : "",
                row.IdleManagedBytesPerConnection is { } heap ? Format(heap, "N0") : "",
                row.Load.Seconds > 0 ? $"{row.Load.CpuSeconds / row.Load.Seconds:P0}" : "");
        }

        return table;
    }

    private static string Ratio(double value, double? baseline) =>
        baseline is > 0 ? (value / baseline.Value).ToString("0.00x", CultureInfo.InvariantCulture) : "";

    private static string Format(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
}
