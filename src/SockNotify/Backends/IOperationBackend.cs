using System.Net.Sockets;
using SockNotify.Internal;

namespace SockNotify.Backends;

/// <summary>
/// What a backend for overlapped operations provides to <see cref="CompletionPort"/>. The port owns associations,
/// validation, the operation objects and their lists; a backend performs operations and reports their outcome.
/// <list type="bullet">
/// <item>Completion: every operation handed to <see cref="Start"/> completes exactly once, through
/// <see cref="CompletionPort.Finish"/> called with its association's lock held, whether it succeeded, failed or was
/// cancelled. Nothing completes after <see cref="IDisposable.Dispose"/>.</item>
/// <item>Locks: <see cref="Start"/>, <see cref="Cancel"/> and <see cref="OnReady"/> are called with the association's
/// lock held; <see cref="Wait"/>, <see cref="Reap"/> and <see cref="ReturnBuffer"/> without any.</item>
/// <item>Waiting: <see cref="Wait"/> blocks for notification readiness and operation completions together; it writes
/// ready notification events and leaves completions for <see cref="Reap"/> (or produces them in
/// <see cref="OnReady"/>).</item>
/// <item>Buffers: a pooled receive that finds no free buffer is parked with <see cref="CompletionPort.ParkForBuffer"/>;
/// the port resumes it through <see cref="Resume"/> after a buffer comes back.</item>
/// </list>
/// </summary>
internal interface IOperationBackend : IDisposable
{
    /// <summary>Prepares the kernel for operations on a newly associated socket.</summary>
    SocketNotifyResult Associate(Association association);

    /// <summary>Forgets a socket whose association ended (its socket was disposed and its operations cancelled).</summary>
    void Dissociate(Association association);

    /// <summary>
    /// Starts an operation already added to its association's list; its outcome goes to the sink (or the queue).
    /// Returns IOPending, or the error that kept it from starting (the port then takes it back; nothing is queued).
    /// </summary>
    SocketError Start(Operation operation, ref CompletionSink sink);

    /// <summary>Asks for the operation to complete at once with OperationAborted (it may still complete with its result).</summary>
    void Cancel(Operation operation, ref CompletionSink sink);

    /// <summary>
    /// Lets the side's new first operation proceed after the port finished the one before it outside the backend
    /// (a cancellation). Backends keep each side's operations in start order, as Winsock does for a socket.
    /// </summary>
    void Advance(ref OperationList side, ref CompletionSink sink);

    /// <summary>Whether finished operations wait to be reaped (a waiter that left some wakes another).</summary>
    bool CompletionsWaiting { get; }

    /// <summary>After <see cref="IDisposable.Dispose"/>: whether the kernel let go of every operation's memory.</summary>
    bool ReleasedEverything { get; }

    /// <summary>Starts a parked pooled receive again after a buffer came back.</summary>
    void Resume(Operation operation, ref CompletionSink sink);

    /// <summary>Readiness reported for an association's socket (backends that perform operations on readiness).</summary>
    void OnReady(Association association, SocketNotifyEvents events, ref CompletionSink sink);

    /// <summary>
    /// Waits up to <paramref name="timeoutMilliseconds"/> for notification readiness or operation completions and
    /// returns the ready notification events written; 0 when it returned for completions, a wake, a signal or the timeout.
    /// </summary>
    int Wait(Span<ReadyEvent> ready, int timeoutMilliseconds);

    /// <summary>Collects finished operations into the sink, at most as many as it has room for.</summary>
    void Reap(ref CompletionSink sink);

    /// <summary>Submits operations started since the last wait (a backend that batches them).</summary>
    void Flush();

    /// <summary>The pool pooled receives draw from (created on first use).</summary>
    BufferPool Buffers { get; }

    /// <summary>Puts a buffer lent to the user back where receives find it.</summary>
    void ReturnBuffer(PooledBuffer buffer);

    /// <summary>Whether a pooled receive could find a buffer now.</summary>
    bool HasFreeBuffer { get; }
}

/// <summary>
/// Where completions go while a dequeue fills the caller's entries: into them while there is room, then to the port's
/// queue for the next dequeue, so that nothing is ever dropped.
/// </summary>
internal ref struct CompletionSink(Span<CompletionEntry> entries, CompletionPort port)
{
    private readonly Span<CompletionEntry> _entries = entries;

    public int Count { get; private set; }

    public readonly int Room => _entries.Length - Count;

    public void Add(in CompletionEntry entry)
    {
        if (Count < _entries.Length)
        {
            _entries[Count++] = entry;
        }
        else
        {
            port.Queue(entry);
        }
    }
}
