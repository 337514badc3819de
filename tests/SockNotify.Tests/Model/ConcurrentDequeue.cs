namespace SockNotify.Tests.Model;

/// <summary>
/// Several threads dequeue from one port at once until the model is satisfied. Each waits as long as the step's
/// deadline allows rather than polling, so that a wake the port loses shows as a timeout instead of being covered by
/// the next poll; once the model is satisfied (or a thread failed), one thread posts a stop packet per thread, which
/// also checks that a post wakes sleeping threads, and each thread leaves at its first stop packet.
/// </summary>
internal static class ConcurrentDequeue
{
    /// <summary>The key of stop packets: no model ever sees them.</summary>
    private static readonly object StopKey = new Support.Key("stop");

    /// <summary>Runs the threads; throws a <see cref="ModelViolation"/> on a failure or when not satisfied by the deadline.</summary>
    /// <param name="port">The port.</param>
    /// <param name="threads">How many threads dequeue.</param>
    /// <param name="size">The size of each thread's entry array.</param>
    /// <param name="deadline">When, in <see cref="Environment.TickCount64"/> time, the threads give up.</param>
    /// <param name="observe">Checks one entry (and the thread's number); called from any of the threads.</param>
    /// <param name="satisfied">Whether everything required has arrived; called from any of the threads.</param>
    /// <param name="runOnThreads">Runs the body on that many threads (with each one's number) and waits for all.</param>
    public static void Run(
        CompletionPort port, int threads, int size, long deadline, Action<CompletionEntry, int> observe, Func<bool> satisfied,
        Action<int, Action<int>> runOnThreads)
    {
        Exception? failure = null;
        int stopped = 0;
        void StopAll()
        {
            if (Interlocked.Exchange(ref stopped, 1) == 0)
            {
                for (int i = 0; i < threads; i++)
                {
                    port.PostQueuedCompletionStatus(StopKey, 0, null);
                }
            }
        }

        if (satisfied())
        {
            StopAll();
        }

        runOnThreads(threads, thread =>
        {
            CompletionEntry[] entries = new CompletionEntry[size];
            while (true)
            {
                int remaining = (int)Math.Max(0, deadline - Environment.TickCount64);
                if (port.GetQueuedCompletionStatus(entries, out int count, remaining) != CompletionWaitResult.Success)
                {
                    return; // The deadline: the caller finds the model unsatisfied.
                }

                bool stop = false;
                foreach (CompletionEntry entry in entries.AsSpan(0, count))
                {
                    if (ReferenceEquals(entry.CompletionKey, StopKey))
                    {
                        if (stop)
                        {
                            port.PostQueuedCompletionStatus(StopKey, 0, null); // One each: pass the extra on.
                        }

                        stop = true;
                        continue;
                    }

                    try
                    {
                        observe(entry, thread);
                    }
                    catch (Exception error)
                    {
                        Interlocked.CompareExchange(ref failure, error, null);
                        StopAll();
                    }
                }

                if (satisfied())
                {
                    StopAll();
                }

                if (stop)
                {
                    return;
                }
            }
        });

        if (failure is not null)
        {
            throw new ModelViolation($"On one of {threads} dequeuing threads: {failure.Message}", failure);
        }
    }
}
