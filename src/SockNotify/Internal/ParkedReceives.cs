using System.Collections.Concurrent;
using SockNotify.Backends;

namespace SockNotify.Internal;

/// <summary>
/// Pooled receives that found every buffer lent, waiting for one to come back (<see cref="OperationState.WaitingForBuffer"/>).
/// Each waits under the token of the use it was parked for, so an entry whose operation was cancelled, finished or
/// recycled meanwhile is skipped when its turn comes.
/// </summary>
internal sealed class ParkedReceives(PortCore port)
{
    private readonly ConcurrentQueue<(Operation Operation, SlotToken Token)> _parked = new();

    /// <summary>Parks a pooled receive that found no free buffer. The caller holds the association's lock.</summary>
    public void Park(Operation operation)
    {
        if (operation.State == OperationState.WaitingForBuffer)
        {
            return;
        }

        operation.State = OperationState.WaitingForBuffer;
        _parked.Enqueue((operation, operation.Token));
        if (port.Engine.HasFreeBuffer)
        {
            // A buffer came back between the failed take and the park, and its return found no one to resume.
            ThreadPool.UnsafeQueueUserWorkItem(static parked => parked.ResumeFirstFromPool(), this, preferLocal: false);
        }
    }

    /// <summary>Gives a pooled buffer back to the engine and resumes one parked receive (see <see cref="CompletionPort.ReturnBuffer"/>).</summary>
    public void ReturnBuffer(in CompletionEntry entry, PooledBuffer buffer)
    {
        if (!port.Lifetime.TryEnter())
        {
            if (!entry.TryReturnPooledBuffer(buffer)) // The port is gone: only the pool's memory is waiting for this buffer.
            {
                throw AlreadyReturned();
            }

            return;
        }

        try
        {
            if (!entry.TryReturnPooledBuffer(buffer))
            {
                throw AlreadyReturned();
            }

            port.Engine.ReturnBuffer(buffer);
            ResumeFirst();
        }
        finally
        {
            port.Lifetime.Exit();
        }
    }

    /// <summary>
    /// A buffer went back to the pool by another way than the user's return (a receive that found the end of the stream
    /// or an error): a parked receive may take it. Called under an association's lock, so the resume runs elsewhere.
    /// </summary>
    public void OnBufferReturned()
    {
        if (!_parked.IsEmpty)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static parked => parked.ResumeFirstFromPool(), this, preferLocal: false);
        }
    }

    private static InvalidOperationException AlreadyReturned() =>
        new("The pooled buffer was already given back (with this completion, or with an earlier one for the same buffer).");

    private void ResumeFirstFromPool()
    {
        if (port.Lifetime.TryEnter())
        {
            try
            {
                ResumeFirst();
            }
            finally
            {
                port.Lifetime.Exit();
            }
        }
    }

    /// <summary>
    /// Starts again the first parked pooled receive still waiting, if a buffer is free: one per buffer that came back,
    /// as every parked receive has data waiting (the engines park only those).
    /// </summary>
    private void ResumeFirst()
    {
        PortEngine engine = port.Engine;
        bool resumed = false;
        while (!resumed && engine.HasFreeBuffer && _parked.TryDequeue(out (Operation Operation, SlotToken Token) parked))
        {
            Operation operation = parked.Operation;
            if (operation.Owner is not { } owner)
            {
                continue; // Finished and recycled meanwhile: a stale entry does not count.
            }

            CompletionSink sink = new([], engine);
            lock (owner)
            {
                if (operation.Token != parked.Token || operation.State != OperationState.WaitingForBuffer)
                {
                    continue; // Cancelled, finished, or recycled for another use.
                }

                operation.State = OperationState.Pending;
                if (owner.IsRemoved)
                {
                    ref OperationList side = ref owner.SideOf(operation);
                    sink.Add(port.Operations.FinishAborted(operation));
                    engine.Advance(ref side, ref sink);
                    continue;
                }

                engine.Resume(operation, ref sink);
                resumed = true;
            }

            engine.Flush();
        }
    }
}
