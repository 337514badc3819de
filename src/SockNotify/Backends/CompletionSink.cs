namespace SockNotify.Backends;

/// <summary>
/// Where completions go while a dequeue fills the caller's entries: into them while there is room, then to the engine's
/// queue for a later dequeue, so that nothing is ever dropped. A sink with no room posts everything.
/// </summary>
internal ref struct CompletionSink(Span<CompletionEntry> entries, PortEngine overflow)
{
    private readonly Span<CompletionEntry> _entries = entries;

    public int Count { get; private set; }

    public readonly int Room => _entries.Length - Count;

    /// <summary>The caller's entries not yet written, for code that writes several at once (then <see cref="Advance"/>).</summary>
    public readonly Span<CompletionEntry> Remaining => _entries[Count..];

    /// <summary>Counts <paramref name="written"/> entries written into <see cref="Remaining"/>.</summary>
    public void Advance(int written) => Count += written;

    public void Add(in CompletionEntry entry)
    {
        if (Count < _entries.Length)
        {
            _entries[Count++] = entry;
        }
        else
        {
            overflow.Post(entry);
        }
    }
}
