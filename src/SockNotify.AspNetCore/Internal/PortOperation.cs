using System.Threading.Tasks.Sources;

namespace SockNotify.AspNetCore.Internal;

/// <summary>
/// One kind of operation of one owner (a connection's receive, its send, a listener's accept) as something to await:
/// reset, started on the port with this object as its context, then completed by the I/O queue's thread that dequeues
/// its completion. One operation at a time, so one object serves the owner's whole life and starting allocates nothing.
/// </summary>
internal sealed class PortOperation : IValueTaskSource<CompletionEntry>
{
    private ManualResetValueTaskSourceCore<CompletionEntry> _source;

    /// <param name="runContinuationsAsynchronously">
    /// False for the transport's own loops, whose continuations then run on the I/O thread that dequeued the
    /// completion (the next operation starts there, with no hop through the thread pool); true where the continuation
    /// is someone else's code (Kestrel's accept loop), which must not hold an I/O thread.
    /// </param>
    public PortOperation(bool runContinuationsAsynchronously)
    {
        _source.RunContinuationsAsynchronously = runContinuationsAsynchronously;
    }

    /// <summary>The completion of the operation started since the last <see cref="Reset"/>.</summary>
    public ValueTask<CompletionEntry> Completion => new(this, _source.Version);

    /// <summary>Readies the object for the next operation: call before starting it, as it may complete at once on another thread.</summary>
    public void Reset() => _source.Reset();

    /// <summary>Called by the I/O queue's thread with the operation's completion.</summary>
    public void Complete(in CompletionEntry entry) => _source.SetResult(entry);

    CompletionEntry IValueTaskSource<CompletionEntry>.GetResult(short token) => _source.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<CompletionEntry>.GetStatus(short token) => _source.GetStatus(token);

    void IValueTaskSource<CompletionEntry>.OnCompleted(
        Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _source.OnCompleted(continuation, state, token, flags);
}
