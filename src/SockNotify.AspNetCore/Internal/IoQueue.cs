using System.Collections.Concurrent;
using System.IO.Pipelines;
using Microsoft.Extensions.Logging;

namespace SockNotify.AspNetCore.Internal;

/// <summary>
/// One completion port and the one thread that dequeues it: the thread completes each <see cref="PortOperation"/>
/// (running the transport loop that awaited it, inline) and runs the pipe continuations scheduled on this queue, so a
/// connection's transport side runs on its queue's thread, as Kestrel's Sockets transport runs it on an IOQueue.
/// </summary>
/// <remarks>
/// As a <see cref="PipeScheduler"/>, work is queued here and one posted packet wakes the thread for all of it (Kestrel's
/// IOQueue does the same with one thread-pool item), so scheduling allocates nothing once the queue's segments exist.
/// </remarks>
internal sealed class IoQueue : PipeScheduler, IDisposable
{
    private const int DequeueCount = 64;

    /// <summary>The posted packet's key that says "scheduled work is waiting".</summary>
    private static readonly object ScheduledWorkKey = new();
    private static readonly object StopKey = new();

    private readonly ConcurrentQueue<(Action<object?> Action, object? State)> _work = new();
    private readonly Thread _thread;
    private readonly ILogger _logger;

    /// <summary>1 while a wake-up packet for scheduled work is queued and not yet taken.</summary>
    private int _workPosted;
    private int _disposed;

    public IoQueue(CompletionPortOptions portOptions, string name, ILogger logger)
    {
        Port = new CompletionPort(portOptions);
        _logger = logger;
        _thread = new Thread(Run) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public CompletionPort Port { get; }

    public override void Schedule(Action<object?> action, object? state)
    {
        _work.Enqueue((action, state));
        if (Interlocked.Exchange(ref _workPosted, 1) == 0)
        {
            try
            {
                Port.PostQueuedCompletionStatus(ScheduledWorkKey, 0, null);
            }
            catch (ObjectDisposedException)
            {
                // Only a straggler can come after the last connection let go of the queue: the thread pool runs it.
                System.Threading.ThreadPool.UnsafeQueueUserWorkItem(_ => RunScheduledWork(), null);
            }
        }
    }

    /// <summary>
    /// Stops the thread and closes the port, which cancels what is still in flight and waits for the kernel to let go
    /// of its buffers. Callable from the queue's own thread (a loop's last continuation may release the queue): the
    /// thread then closes the port itself as it leaves.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Port.PostQueuedCompletionStatus(StopKey, 0, null);
        if (Thread.CurrentThread != _thread)
        {
            _thread.Join();
        }
    }

    private void Run()
    {
        CompletionEntry[] entries = new CompletionEntry[DequeueCount];
        try
        {
            while (true)
            {
                if (Port.GetQueuedCompletionStatus(entries, out int count, Timeout.Infinite) != CompletionWaitResult.Success)
                {
                    return;
                }

                bool stopping = false;
                for (int i = 0; i < count; i++)
                {
                    ref readonly CompletionEntry entry = ref entries[i];
                    if (entry.Context is PortOperation operation)
                    {
                        operation.Complete(entry);
                    }
                    else if (entry.CompletionKey == ScheduledWorkKey)
                    {
                        RunScheduledWork();
                    }
                    else if (entry.CompletionKey == StopKey)
                    {
                        stopping = true;
                    }
                }

                Array.Clear(entries, 0, count); // Accepted sockets and pooled buffers are not kept alive by the array.
                if (stopping)
                {
                    return;
                }
            }
        }
        finally
        {
            Port.Dispose();
        }
    }

    private void RunScheduledWork()
    {
        // Cleared before draining: work queued from now on posts a new packet, so none is left behind.
        Volatile.Write(ref _workPosted, 0);
        while (_work.TryDequeue(out (Action<object?> Action, object? State) work))
        {
            try
            {
                work.Action(work.State);
            }
            catch (Exception ex)
            {
                // A pipe continuation does not throw; if one ever did, the thread must live on for the other connections.
                SockNotifyLog.ScheduledWorkFailed(_logger, ex);
            }
        }
    }
}
