using System.Globalization;

namespace SockNotify.Cli.Soak;

/// <summary>One sample of a soak: what the clients did so far, and what the process and SockNotify hold now.</summary>
/// <param name="Elapsed">Time since the clients started.</param>
/// <param name="Open">Client connections connected and not yet closed (the server may hold fewer, not yet accepted, or more, not yet closed).</param>
/// <param name="Completed">Connections ended by close or half-close with every byte verified.</param>
/// <param name="Reset">Connections the clients reset on purpose.</param>
/// <param name="BytesVerified">Echoed bytes checked against what was sent.</param>
/// <param name="Descriptors">Open file descriptors of the whole process (clients, server, runtime).</param>
/// <param name="ResidentBytes">Resident memory of the process.</param>
/// <param name="HeapBytes">Live managed heap, measured right after a full collection.</param>
/// <param name="SockNotify">The library's meter: ports, registrations, operations in flight, pooled buffers lent.</param>
internal readonly record struct SoakFigures(
    TimeSpan Elapsed,
    long Open,
    long Completed,
    long Reset,
    long BytesVerified,
    int Descriptors,
    long ResidentBytes,
    long HeapBytes,
    SockNotifyFigures SockNotify)
{
    /// <summary>Connections churned: ended one way or the other.</summary>
    public long Ended => Completed + Reset;

    /// <summary>One line for the log, labelled with what the sample is (a time, the warm-up's end, the end).</summary>
    public string Format(string label) => string.Create(CultureInfo.InvariantCulture,
        $"{label,-8} open {Open,5}  completed {Completed,9:N0}  reset {Reset,8:N0}  verified {Mebibytes(BytesVerified),10} | "
        + $"fds {Descriptors,6:N0}  rss {Mebibytes(ResidentBytes),9}  heap {Mebibytes(HeapBytes),9} | "
        + $"registrations {SockNotify.Registrations,5:N0}  operations {SockNotify.Operations,5:N0}  lent {SockNotify.BuffersLent,4:N0}");

    public static string Mebibytes(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:N1} MiB");
}
