namespace SockNotify.Tests.Support;

/// <summary>
/// The process's open descriptors with what they point to, so that a leak test names what leaked. Descriptors are
/// process-wide: tests that count or reuse them belong to <see cref="DescriptorSensitive"/>, which runs alone.
/// </summary>
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

    public void AssertUnchanged()
    {
        Descriptors now = Snapshot();
        IEnumerable<string> opened = now._targets.Where(t => !_targets.ContainsKey(t.Key)).Select(t => $"+{t.Key} {t.Value}");
        IEnumerable<string> closed = _targets.Where(t => !now._targets.ContainsKey(t.Key)).Select(t => $"-{t.Key} {t.Value}");
        string difference = string.Join(", ", opened.Concat(closed));
        Assert.True(difference.Length == 0, $"Descriptors changed: {difference}");
    }
}

/// <summary>Tests that count or reuse descriptor numbers run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(DescriptorSensitive), DisableParallelization = true)]
public sealed class DescriptorSensitive;
