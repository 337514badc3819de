namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>The process's open descriptors with what they point to, so that a leak test names what leaked.</summary>
internal sealed class Descriptors
{
    private readonly Dictionary<string, string> _targets;

    private Descriptors(Dictionary<string, string> targets) => _targets = targets;

    public static Descriptors Snapshot()
    {
        // Sockets closed but not disposed are closed by finalizers; run them now so they cannot change the count later.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        Dictionary<string, string> targets = [];
        foreach (string path in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                string target = new FileInfo(path).LinkTarget ?? "?";
                if (!target.EndsWith(".dll", StringComparison.Ordinal))
                {
                    targets[Path.GetFileName(path)] = target; // The runtime maps assemblies as it loads them: not a leak.
                }
            }
            catch (IOException)
            {
                // The descriptor used to list the folder itself is gone by now.
            }
        }

        return new Descriptors(targets);
    }

    /// <summary>The descriptors open now that were not open at this snapshot, as "number -> target".</summary>
    public IReadOnlyList<string> OpenedSince()
    {
        Descriptors now = Snapshot();
        return now._targets.Where(entry => !_targets.TryGetValue(entry.Key, out string? before) || before != entry.Value)
            .Select(entry => $"{entry.Key} -> {entry.Value}").ToList();
    }
}
