using System.Globalization;

namespace SockNotify.Cli.Soak;

/// <summary>
/// What a soak's figures may reach, and the checks that they did not. With N client connections, under load after the
/// warm-up:
/// <list type="bullet">
/// <item>descriptors &lt;= the count at start + 2 N + a lag allowance of N + 64: each connection is two descriptors in
/// this process, client and server side, and a saturated server also holds connections whose client already left and
/// whose end it has not processed yet (1.2 N server sockets measured with 9,000 connections on 2 cores);</item>
/// <item>SockNotify registrations and operations in flight &lt;= 2 N + 64 (a server connection has one registration and
/// at most one operation, and there are up to N + lag of them, plus the listener's and its posted accepts); pooled
/// buffers lent &lt;= N + 64 (a connection holds one only while its echo is being sent);</item>
/// <item>resident memory &lt;= 1.5 x its highest value during the warm-up + 64 MiB, and the live managed heap (after a
/// full collection) &lt;= 1.5 x its highest value then + 16 MiB, each + 16 KiB per connection for the clients' sends
/// waiting for a server that fell behind;</item>
/// <item>connections churned grows between samples at least a second apart (nothing stalled).</item>
/// </list>
/// These are absolute, so a leak of one descriptor, registration or operation per connection churned exceeds them before
/// 3 N + 64 connections have churned, within seconds: a soak churns 5,000 to 10,000 connections a second here. Pooled
/// buffers are capped by the pool (1,024 by default), so a leak of one per connection drains the pool instead and
/// stalls the soak, which the last bound and the clients' 30 s timeout report.
/// <para>Once the clients have left, exactly: the sockets and kernel objects (epoll, eventfd, io_uring) open are those
/// at start, SockNotify's registrations and operations are those at start (the listener and its posted accepts) and no
/// pooled buffer is lent, which a single leaked descriptor, registration, operation or buffer breaks. Once the server
/// has stopped: the sockets and kernel objects are those before it started, and SockNotify holds nothing.</para>
/// </summary>
internal sealed class SoakBounds
{
    /// <summary>Descriptors kept free below the open-files limit, for what the runtime and the sampling open themselves.</summary>
    public const int LimitHeadroom = 16;

    /// <summary>The fixed part of the allowances, for the listener, posted accepts and a few connections in passing.</summary>
    private const int Slack = 64;

    /// <summary>Below this gap between two samples, connections churned is not required to grow.</summary>
    private static readonly TimeSpan ProgressWindow = TimeSpan.FromSeconds(1);

    private const double MemoryFactor = 1.5;
    private const long ResidentSlack = 64L << 20;
    private const long HeapSlack = 16L << 20;

    private SoakBounds(SoakStart start, long residentReference, long heapReference)
    {
        Start = start;
        ResidentReference = residentReference;
        HeapReference = heapReference;
    }

    /// <summary>The soak's connections and what was open once the server listened, before any client connected.</summary>
    public SoakStart Start { get; }

    /// <summary>The highest resident memory during the warm-up, which later figures are compared with.</summary>
    public long ResidentReference { get; }

    /// <summary>The highest live managed heap during the warm-up.</summary>
    public long HeapReference { get; }

    public long MaxDescriptors => MaxDescriptorsFor(Start.Connections, Start.Descriptors);

    /// <summary>The bound on registrations and operations in flight: every server connection, its lag included.</summary>
    public long MaxPerServerConnection => 2L * Start.Connections + Slack;

    public long MaxBuffersLent => Start.Connections + (long)Slack;

    public long MaxResidentBytes => (long)(ResidentReference * MemoryFactor) + ResidentSlack + ClientSendBytes;

    public long MaxHeapBytes => (long)(HeapReference * MemoryFactor) + HeapSlack + ClientSendBytes;

    /// <summary>
    /// What the clients' sends may hold at once when the server falls behind (one chunk each): it swings the heap by tens
    /// of megabytes between samples, so the memory bounds allow it on top of the warm-up's peak.
    /// </summary>
    private long ClientSendBytes => (long)Start.Connections * SoakConnection.MaxChunk;

    /// <summary>
    /// Two descriptors per connection and a lag allowance of N + 64 for closes the server has not processed yet: a
    /// saturated server does use it (1.2 N server sockets measured with 9,000 connections on 2 cores).
    /// </summary>
    public static long MaxDescriptorsFor(int connections, int descriptorsAtStart) => descriptorsAtStart + 3L * connections + Slack;

    /// <summary>
    /// Whether <paramref name="connections"/> fit under the open-files limit, their whole allowance and a headroom
    /// included: a process out of descriptors fails its clients' connects, which is not what a soak measures.
    /// </summary>
    public static bool Fits(int connections, int descriptorsAtStart, long? openFilesLimit) =>
        openFilesLimit is not { } limit || MaxDescriptorsFor(connections, descriptorsAtStart) + LimitHeadroom <= limit;

    /// <summary>The bounds after the warm-up, its memory figures taken from <paramref name="warmUp"/> (at least one sample).</summary>
    public static SoakBounds After(SoakStart start, IReadOnlyCollection<SoakFigures> warmUp) =>
        new(start, warmUp.Max(f => f.ResidentBytes), warmUp.Max(f => f.HeapBytes));

    /// <summary>Every bound <paramref name="current"/> exceeds, each with its figures; empty when all hold.</summary>
    public IReadOnlyList<string> Check(in SoakFigures previous, in SoakFigures current)
    {
        int n = Start.Connections;
        List<string> exceeded = [];
        Bound("descriptors", current.Descriptors, MaxDescriptors,
            $"{Start.Descriptors} at start + 2 x {n} connections + {n + Slack} for closes the server has not processed yet");
        Bound("SockNotify registrations", current.SockNotify.Registrations, MaxPerServerConnection, $"2 x {n} connections + {Slack}");
        Bound("SockNotify operations in flight", current.SockNotify.Operations, MaxPerServerConnection, $"2 x {n} connections + {Slack}");
        Bound("SockNotify pooled buffers lent", current.SockNotify.BuffersLent, MaxBuffersLent, $"{n} connections + {Slack}");
        Bound("resident memory", current.ResidentBytes, MaxResidentBytes,
            $"{MemoryFactor} x {SoakFigures.Mebibytes(ResidentReference)} in the warm-up + {SoakFigures.Mebibytes(ResidentSlack)} "
            + $"+ {SoakFigures.Mebibytes(ClientSendBytes)} for the clients' sends", inMebibytes: true);
        Bound("managed heap", current.HeapBytes, MaxHeapBytes,
            $"{MemoryFactor} x {SoakFigures.Mebibytes(HeapReference)} in the warm-up + {SoakFigures.Mebibytes(HeapSlack)} "
            + $"+ {SoakFigures.Mebibytes(ClientSendBytes)} for the clients' sends", inMebibytes: true);
        if (current.Elapsed - previous.Elapsed >= ProgressWindow && current.Ended <= previous.Ended)
        {
            exceeded.Add(string.Create(CultureInfo.InvariantCulture,
                $"no connection ended between {previous.Elapsed.TotalSeconds:0.#} s and {current.Elapsed.TotalSeconds:0.#} s ({current.Ended:N0} so far, {current.Open:N0} open): the soak stalled"));
        }

        return exceeded;

        void Bound(string name, long value, long max, string why, bool inMebibytes = false)
        {
            if (value > max)
            {
                exceeded.Add(inMebibytes
                    ? $"{name} {SoakFigures.Mebibytes(value)} exceeds its bound {SoakFigures.Mebibytes(max)} ({why})"
                    : string.Create(CultureInfo.InvariantCulture, $"{name} {value:N0} exceeds its bound {max:N0} ({why})"));
            }
        }
    }

    /// <summary>What the server still holds, beyond what it held at start, once every client has left; empty when nothing.</summary>
    public static IReadOnlyList<string> CheckIdle(SoakStart start, int kernelObjects, SockNotifyFigures sockNotify)
    {
        List<string> held = [];
        if (kernelObjects > start.KernelObjects)
        {
            held.Add($"{kernelObjects} sockets and kernel objects open with every client gone, {start.KernelObjects} at start");
        }

        if (sockNotify.Registrations > start.SockNotify.Registrations || sockNotify.Operations > start.SockNotify.Operations || sockNotify.BuffersLent > 0)
        {
            held.Add($"SockNotify holds {sockNotify.Registrations} registrations, {sockNotify.Operations} operations and {sockNotify.BuffersLent} lent "
                + $"buffers with every client gone, {start.SockNotify.Registrations}, {start.SockNotify.Operations} and 0 at start");
        }

        return held;
    }

    /// <summary>What is still held once the server stopped, beyond what was open before it started; empty when nothing.</summary>
    public static IReadOnlyList<string> CheckReleased(int kernelObjectsBeforeServer, int kernelObjects, SockNotifyFigures sockNotify)
    {
        List<string> held = [];
        if (kernelObjects > kernelObjectsBeforeServer)
        {
            held.Add($"{kernelObjects} sockets and kernel objects open after the server stopped, {kernelObjectsBeforeServer} before it started");
        }

        if (sockNotify != default)
        {
            held.Add($"SockNotify still holds {sockNotify.Ports} ports, {sockNotify.Registrations} registrations, {sockNotify.Operations} operations "
                + $"and {sockNotify.BuffersLent} lent buffers after the server stopped");
        }

        return held;
    }

    /// <summary>The bounds as lines for the log.</summary>
    public IEnumerable<string> Describe() =>
    [
        string.Create(CultureInfo.InvariantCulture,
            $"bounds: descriptors <= {MaxDescriptors:N0}, registrations and operations <= {MaxPerServerConnection:N0}, lent buffers <= {MaxBuffersLent:N0}, "
            + $"rss <= {SoakFigures.Mebibytes(MaxResidentBytes)}, heap <= {SoakFigures.Mebibytes(MaxHeapBytes)}, connections keep ending"),
    ];
}

/// <summary>A soak's connection count and what the process held once the server listened, before any client connected.</summary>
/// <param name="Connections">Client connections at once.</param>
/// <param name="Descriptors">Open descriptors.</param>
/// <param name="KernelObjects">Of those, sockets and kernel objects (epoll, eventfd, io_uring): what a leak would add to.</param>
/// <param name="SockNotify">The library's figures: the listener's registration and its posted accepts.</param>
internal sealed record SoakStart(int Connections, int Descriptors, int KernelObjects, SockNotifyFigures SockNotify);
