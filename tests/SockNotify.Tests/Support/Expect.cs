using System.Net.Sockets;

namespace SockNotify.Tests.Support;

/// <summary>
/// What a test waits for on a port, every wait bounded by the one <see cref="DeadlineMilliseconds"/>: socket
/// notifications (<see cref="Events"/>), operation completions (<see cref="Completion"/>, <see cref="Completions"/>),
/// silence (<see cref="Nothing"/>) and operations that started (<see cref="Started"/>).
/// </summary>
internal static class Expect
{
    /// <summary>How long anything a test expects may take to arrive: the deadline of every wait in the suite.</summary>
    public const int DeadlineMilliseconds = 5000;

    /// <summary>
    /// Waits the way mio's tests do: until, for each expected key, one entry carries all of the expected events. Other
    /// entries in between are tolerated, because notifications may be spurious or coalesced differently. Returns
    /// every entry seen.
    /// </summary>
    public static List<CompletionEntry> Events(CompletionPort port, params (object Key, SocketNotifyEvents Events)[] expected)
    {
        List<(object Key, SocketNotifyEvents Events)> missing = [.. expected];
        List<CompletionEntry> seen = [];
        CompletionEntry[] entries = new CompletionEntry[16];
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(DeadlineMilliseconds);
        while (missing.Count > 0)
        {
            int remaining = (int)Math.Max(0, (deadline - DateTime.UtcNow).TotalMilliseconds);
            CompletionWaitResult result = port.GetQueuedCompletionStatus(entries, out int count, remaining);
            if (result == CompletionWaitResult.TimedOut)
            {
                Assert.Fail($"Timed out waiting for {string.Join(", ", missing.Select(m => $"{m.Key}: {m.Events}"))}; saw {Describe(seen)}.");
            }

            Assert.Equal(CompletionWaitResult.Success, result);
            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                seen.Add(entry);
                missing.RemoveAll(m => ReferenceEquals(m.Key, entry.CompletionKey) && (entry.Events & m.Events) == m.Events);
            }
        }

        return seen;
    }

    /// <summary>Dequeues exactly one entry, failing when none comes within <paramref name="timeoutMilliseconds"/>.</summary>
    public static CompletionEntry Completion(CompletionPort port, int timeoutMilliseconds = DeadlineMilliseconds)
    {
        CompletionEntry[] entries = new CompletionEntry[1];
        CompletionWaitResult result = port.GetQueuedCompletionStatus(entries, out int count, timeoutMilliseconds);
        Assert.True(result == CompletionWaitResult.Success, $"No completion within {timeoutMilliseconds} ms ({result}).");
        Assert.Equal(1, count);
        return entries[0];
    }

    /// <summary>Dequeues exactly <paramref name="count"/> entries (never more), failing when they do not all come in time.</summary>
    public static List<CompletionEntry> Completions(CompletionPort port, int count)
    {
        List<CompletionEntry> taken = [];
        CompletionEntry[] entries = new CompletionEntry[64];
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(DeadlineMilliseconds);
        while (taken.Count < count)
        {
            int remaining = (int)Math.Max(0, (deadline - DateTime.UtcNow).TotalMilliseconds);
            CompletionWaitResult result = port.GetQueuedCompletionStatus(entries.AsSpan(0, Math.Min(entries.Length, count - taken.Count)), out int got, remaining);
            Assert.True(result == CompletionWaitResult.Success, $"Got {taken.Count} of {count} completions, then {result}.");
            taken.AddRange(entries.AsSpan(0, got));
        }

        return taken;
    }

    /// <summary>Asserts that no entry arrives for <paramref name="milliseconds"/>.</summary>
    public static void Nothing(CompletionPort port, int milliseconds = 100)
    {
        CompletionEntry[] entries = new CompletionEntry[16];
        CompletionWaitResult result = port.GetQueuedCompletionStatus(entries, out int count, milliseconds);
        Assert.True(result == CompletionWaitResult.TimedOut, $"Expected nothing, got {Describe(entries.AsSpan(0, count).ToArray())}.");
    }

    /// <summary>Dequeues everything available within <paramref name="milliseconds"/> of quiet.</summary>
    public static List<CompletionEntry> All(CompletionPort port, int milliseconds = 100)
    {
        List<CompletionEntry> seen = [];
        CompletionEntry[] entries = new CompletionEntry[16];
        while (port.GetQueuedCompletionStatus(entries, out int count, milliseconds) == CompletionWaitResult.Success)
        {
            seen.AddRange(entries.AsSpan(0, count));
        }

        return seen;
    }

    /// <summary>Asserts that an operation started: it will complete through the port.</summary>
    public static void Started(SocketError started) => Assert.Equal(SocketError.IOPending, started);

    /// <summary>Entries in one line: key and events, and for completions context, error and bytes.</summary>
    public static string Describe(IEnumerable<CompletionEntry> entries) =>
        "[" + string.Join(", ", entries.Select(e => e.Context is null && e.SocketError == SocketError.Success
            ? $"{e.CompletionKey}: {e.Events}"
            : $"{e.CompletionKey}: context {e.Context} ({e.SocketError}, {e.BytesTransferred} bytes)")) + "]";
}
