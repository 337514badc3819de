using System.Collections.Concurrent;

namespace SockNotify.Tests.Model;

/// <summary>
/// How often each kind of event happened over a run (CsCheck's classify, by hand): a green run proves something only
/// if the interesting cases were reached, so each model counts what it saw and the test prints the table.
/// </summary>
internal sealed class Coverage
{
    private readonly ConcurrentDictionary<string, int> _counts = new();

    public void Count(string what) => _counts.AddOrUpdate(what, 1, (_, count) => count + 1);

    public override string ToString() =>
        string.Join("\n", _counts.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"  {c.Value,9:N0}  {c.Key}"));
}
