namespace SockNotify.Tests.Support;

/// <summary>
/// Waits for notifications the way mio's tests do: every expected (key, events) must arrive within the deadline, and
/// other entries in between are tolerated, because notifications may be spurious or coalesced differently.
/// </summary>
internal static class Expect
{
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(5);

    /// <summary>Waits until, for each expected key, one entry carries all of the expected events. Returns every entry seen.</summary>
    public static List<CompletionEntry> Events(CompletionPort port, params (object Key, SocketNotifyEvents Events)[] expected)
    {
        List<(object Key, SocketNotifyEvents Events)> missing = [.. expected];
        List<CompletionEntry> seen = [];
        CompletionEntry[] entries = new CompletionEntry[16];
        DateTime deadline = DateTime.UtcNow + Deadline;
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

    public static string Describe(IEnumerable<CompletionEntry> entries) =>
        "[" + string.Join(", ", entries.Select(e => $"{e.CompletionKey}: {e.Events}")) + "]";
}

/// <summary>Registration items in one line each.</summary>
internal static class Items
{
    public static SocketNotifyRegistration Enable(
        System.Net.Sockets.Socket socket, object? key, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        new() { Socket = socket, CompletionKey = key, EventFilter = filter, Operation = SocketNotifyOperation.Enable, TriggerFlags = trigger };

    public static SocketNotifyRegistration Disable(System.Net.Sockets.Socket socket) =>
        new() { Socket = socket, Operation = SocketNotifyOperation.Disable };

    public static SocketNotifyRegistration Remove(System.Net.Sockets.Socket socket) =>
        new() { Socket = socket, Operation = SocketNotifyOperation.Remove };

    /// <summary>Applies one item and returns its result.</summary>
    public static SocketNotifyResult Apply(this CompletionPort port, SocketNotifyRegistration item)
    {
        port.ProcessSocketNotifications(ref item);
        return item.RegistrationResult;
    }

    /// <summary>Applies one item and asserts that it succeeded.</summary>
    public static void Register(this CompletionPort port, SocketNotifyRegistration item) =>
        Assert.Equal(SocketNotifyResult.Success, port.Apply(item));
}

/// <summary>A named completion key, so failures print readable keys.</summary>
internal sealed record Key(string Name)
{
    public override string ToString() => Name;
}
