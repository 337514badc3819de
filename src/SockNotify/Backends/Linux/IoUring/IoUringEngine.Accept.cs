using System.Net.Sockets;
using SockNotify.Internal;
using static SockNotify.Interop;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// io_uring's state for one associated socket, kept in <see cref="Association.EngineState"/> (mio's
/// <c>IoSourceState</c>): a listener's multishot accept. Changed under the association's lock.
/// </summary>
internal sealed class IoUringSocketState
{
    /// <summary>A multishot accept is in the kernel for this listener (user data: see <see cref="IoUringEngine"/>).</summary>
    public bool AcceptArmed;

    /// <summary>Its cancellation was asked for (it ends with its next final completion).</summary>
    public bool AcceptCancelling;

    /// <summary>Connections the multishot accept took while no Accept operation waited.</summary>
    public Queue<int>? AcceptBacklog;
}

// Accept operations are served by one multishot accept per listener, armed while any Accept waits and cancelled when
// none is left, so that a listener nobody accepts on holds nothing in the kernel (its owner's dispose closes it at
// once). A connection the kernel hands over with none waiting is held for the next one.
// Accepts never go to the kernel themselves.
internal sealed unsafe partial class IoUringEngine
{
    /// <summary>
    /// Every arm of one listener's multishot accept carries the same user data. A cancel aimed at an earlier arm is
    /// always written, under the listener's lock, before the entry of a later arm, and the kernel takes entries in order,
    /// so it can only reach the arm it was meant for (and a wrongly ended arm would end with ECANCELED and be re-armed).
    /// </summary>
    private static ulong AcceptData(Association listener) => SlotToken.EngineBit | listener.Token.Value;

    private static IoUringSocketState StateOf(Association association) =>
        (IoUringSocketState)(association.EngineState ??= new IoUringSocketState());

    /// <summary>Serves an Accept from the backlog, or waits for the multishot accept (arming it). Under the listener's lock.</summary>
    private SocketError StartAccept(Operation operation, ref CompletionSink sink)
    {
        Association listener = operation.Owner;
        IoUringSocketState state = StateOf(listener);
        if (state.AcceptBacklog is { Count: > 0 } backlog)
        {
            FinishAccept(operation, backlog.Dequeue(), ref sink);
            return SocketError.IOPending;
        }

        return state.AcceptArmed ? SocketError.IOPending : ArmMultishotAccept(listener, state);
    }

    private SocketError ArmMultishotAccept(Association listener, IoUringSocketState state)
    {
        lock (_submissions.Gate)
        {
            if (_disposing)
            {
                return SocketError.OperationAborted;
            }

            SubmissionEntry* entry = _submissions.NextEntry();
            if (entry is null)
            {
                return SocketError.NoBufferSpaceAvailable;
            }

            Prep.MultishotAccept(entry, (int)listener.Handle.DangerousGetHandle(), AcceptData(listener));
            Interlocked.Increment(ref _inKernel); // Under the gate, before it is published: see Submit.
            _submissions.Publish(listener.Handle);
        }

        state.AcceptArmed = true;
        return SocketError.IOPending;
    }

    private void CompleteMultishotAccept(in CompletionQueueEntry completion, ref CompletionSink sink)
    {
        bool ended = (completion.Flags & IORING_CQE_F_MORE) == 0;
        int result = completion.Result;
        if (Port.Registrations.Find(new SlotToken(completion.UserData & ~SlotToken.EngineBit)) is not Association listener)
        {
            // The listener's association ended and its slot was freed (its accept was cancelled with it), or the port is
            // being disposed (which frees every slot): the connection goes nowhere.
            if (result >= 0)
            {
                Interop.Close(result);
            }

            if (ended)
            {
                Interlocked.Decrement(ref _inKernel);
            }

            return;
        }

        lock (listener)
        {
            IoUringSocketState state = StateOf(listener);
            Operation? waiting = FirstWaitingAccept(listener);
            if (result >= 0)
            {
                if (waiting is not null)
                {
                    FinishAccept(waiting, result, ref sink);
                    if (!ended && FirstWaitingAccept(listener) is null)
                    {
                        CancelMultishotAccept(listener, state); // The last waiting Accept is served.
                    }
                }
                else if (listener.IsRemoved || _disposing)
                {
                    Interop.Close(result);
                }
                else
                {
                    (state.AcceptBacklog ??= new Queue<int>()).Enqueue(result);
                    if (!ended)
                    {
                        CancelMultishotAccept(listener, state); // Nobody accepts: let the kernel's own backlog hold the rest.
                    }
                }
            }
            else if (ended && waiting is not null && result != -(int)Errno.ECANCELED)
            {
                // A failure (too many open files, say) goes to one waiting Accept, so that none loops on it.
                waiting.Error = ToSocketError((Errno)(-result));
                sink.Add(Port.Operations.Finish(waiting));
            }

            if (!ended)
            {
                return;
            }

            Interlocked.Decrement(ref _inKernel);
            state.AcceptArmed = false;
            state.AcceptCancelling = false;
            if (listener.IsRemoved || _disposing)
            {
                CloseBacklog(listener);
            }
            else if (FirstWaitingAccept(listener) is not null && ArmMultishotAccept(listener, state) != SocketError.IOPending)
            {
                // Nothing is armed to serve them: every waiting Accept fails, none is left waiting for nothing.
                while (FirstWaitingAccept(listener) is { } waitingAccept)
                {
                    waitingAccept.Error = SocketError.NoBufferSpaceAvailable;
                    sink.Add(Port.Operations.Finish(waitingAccept));
                }
            }
        }
    }

    private void CancelMultishotAccept(Association listener, IoUringSocketState state)
    {
        if (!state.AcceptCancelling)
        {
            state.AcceptCancelling = RequestCancel(AcceptData(listener)); // Asked again next time if the ring was full.
        }
    }

    private static Operation? FirstWaitingAccept(Association listener)
    {
        for (Operation? operation = listener.ReceiveSide.Head; operation is not null; operation = operation.Next)
        {
            if (operation.Kind == OperationKind.Accept)
            {
                return operation;
            }
        }

        return null;
    }

    private void FinishAccept(Operation operation, int fd, ref CompletionSink sink)
    {
        operation.SetAccepted(fd);
        sink.Add(Port.Operations.Finish(operation));
    }

    /// <summary>Closes the connections a listener held. Under its lock.</summary>
    private static void CloseBacklog(Association listener)
    {
        while (listener.EngineState is IoUringSocketState { AcceptBacklog: { Count: > 0 } backlog })
        {
            Interop.Close(backlog.Dequeue());
        }
    }
}
