using System.Diagnostics;
using System.Net.Sockets;
using SockNotify.Backends.Linux;
using SockNotify.Backends.Windows;
using SockNotify.Internal;

namespace SockNotify.Backends;

/// <summary>
/// The seam between what every operating system shares and what one provides, as mio's <c>src/sys/mod.rs</c> draws it.
/// <para><b>Above the seam, shared</b>: the public API and its validation (<see cref="CompletionPort"/>); the tables
/// that map registrations, completion keys, operations and contexts to the tokens the kernel carries
/// (<see cref="RegistrationTable"/>, <see cref="OperationTable"/>, <see cref="SlotToken"/>); the registration state
/// machine and the Remove-is-last bookkeeping (<see cref="Registrar"/>: it posts a Remove entry after
/// <see cref="Delete"/> succeeded); the exactly-once finish of an operation and pooled receives waiting for a buffer
/// (<see cref="OperationManager"/>); the timeout loop of a dequeue (<see cref="Dequeue"/>).</para>
/// <para><b>What an engine provides, and promises</b>:</para>
/// <list type="bullet">
/// <item><b>Waiting</b>: <see cref="Wait"/> writes notifications, operation completions and posted packets, in any mix.
/// It may return 0 (woken, interrupted, or nothing deliverable): the loop waits again until its deadline. Once the
/// port is disposed it returns <see cref="PortClosed"/> and makes one more waiter return (waiters pass the wake on).
/// Notifications go through <see cref="Registration.Filter"/>: the kernel may report more than asked, or spuriously.
/// No source starves another however small the caller's array, and one thread receives completions in the order they
/// happened (those queued earlier before those the kernel reports now).</item>
/// <item><b>Posting and waking</b>: <see cref="Post"/> queues an entry that exactly one dequeuer receives, in post
/// order, waking a waiter if one sleeps; <see cref="Wake"/> makes one current or future wait return.</item>
/// <item><b>Notifications</b>: <see cref="Add"/>, <see cref="Modify"/>, <see cref="Disable"/> and <see cref="Delete"/>
/// keep the kernel's registration under the registration's token, with Level/Edge and OneShot/Persistent done by the
/// kernel so that a one-shot registration fires for one waiter only. After a successful Delete no wait that starts
/// later reports the token. The registrar serializes the calls about one registration (under its lock).</item>
/// <item><b>Operations</b>: <see cref="Associate"/> prepares a socket, <see cref="Dissociate"/> forgets it after its
/// operations were cancelled: when it returns, the cancellations it could ask for (a ring that stays full may refuse
/// one; that operation then ends on its own) are in the kernel and nothing of the engine's holds the socket, so its
/// owner may close it (<see cref="CompletionPort.CloseSocket"/>) or use it elsewhere. <see cref="Start"/> (under the association's lock) returns IOPending, after which the
/// operation ends exactly once, through <see cref="OperationManager.Finish"/> with the association's lock held, whatever
/// its outcome; any other result means it did not start. An engine keeps each side's operations in start order, one in
/// the kernel at a time. It moves an operation to <see cref="OperationState.InKernel"/> when the kernel takes it and back
/// to <see cref="OperationState.Pending"/> when the kernel's final report comes; <see cref="Cancel"/> is then only a
/// request (the operation may still complete with its result). A pooled receive that finds no free buffer is handed
/// to <see cref="ParkedReceives.Park"/>, and comes back through <see cref="Resume"/>.</item>
/// <item><b>Submission</b>: an engine may batch what <see cref="Start"/> writes; <see cref="SubmitStarted"/>, called
/// after the association's lock is released, submits when no waiting thread would, and <see cref="Flush"/> submits at once.
/// Neither throws (the start or cancel it follows took effect already): what the kernel refused stays for the next
/// wait, which reports a kernel that keeps refusing.</item>
/// <item><b>Disposal</b>: <see cref="Quiesce"/> runs once, in the port's Dispose, while other threads may still be inside
/// the port: from then on nothing new reaches the kernel, and before it returns the kernel has let go of every
/// operation (cancelled and waited for, within a bound), so the caller may free its buffers. It reports in
/// <see cref="ReleasedEverything"/> whether the kernel let go of everything. <see cref="IDisposable.Dispose"/> runs
/// once, after the last call left the port, and releases the engine's own resources; an entry no one will dequeue is
/// dropped with <see cref="CompletionEntry.DropUndelivered"/>.</item>
/// <item><b>Threads</b>: every member may be called from many threads at once.</item>
/// </list>
/// <para><b>Shapes</b>: on Linux (<see cref="LinuxEngine"/>) epoll reports readiness, an eventfd wakes, and a managed
/// queue holds posted entries, with operations in io_uring or performed on readiness. On Windows the kernel's completion
/// port is the queue (<see cref="Windows.WindowsEngine"/>): <see cref="Wait"/> is <c>GetQueuedCompletionStatusEx</c>,
/// <see cref="Post"/> is <c>PostQueuedCompletionStatus</c> of a packet that stands for the oldest entry of a managed
/// FIFO (the key and context objects never reach the kernel), <see cref="Wake"/> a private packet, <see cref="Start"/>
/// an overlapped call whose OVERLAPPED is the operation slot's; notifications are to come from
/// <c>ProcessSocketNotifications</c> (whose own Remove packets the engine drops: the registrar posts the port's) or
/// from AFD polls.</para>
/// </summary>
internal abstract class PortEngine(PortCore port, CompletionPortOptions options) : IDisposable
{
    /// <summary>What <see cref="Wait"/> returns once the port is disposed.</summary>
    protected const int PortClosed = -1;

    private static int s_lastIdentity;

    /// <summary>
    /// The <see cref="_identity"/> of the port whose dequeue last gave this thread entries, until the thread dequeues
    /// again (a number, not a reference, so that a thread does not keep a disposed port alive).
    /// </summary>
    [ThreadStatic]
    private static int t_dequeuedFrom;

    private readonly int _identity = Interlocked.Increment(ref s_lastIdentity);

    private readonly Lock _buffersGate = new();
    private BufferPool? _buffers;

    // Entries delivered by this port's dequeues, for the meter. Each dequeue call that delivers adds its tally once per
    // kind it delivered (at most three interlocked adds per call, on fields only this port's dequeuers write), never
    // once per entry: a call that takes a batch of 64 completions pays one add.
    private long _notificationsDelivered;
    private long _completionsDelivered;
    private long _postsDelivered;

    /// <summary>The kernel interface that performs operations (never Automatic).</summary>
    public abstract CompletionPortBackend Backend { get; }

    /// <summary>The pool pooled receives draw from, made on first use (its slab costs address space, not memory, until used).</summary>
    public BufferPool Buffers
    {
        get
        {
            if (Volatile.Read(ref _buffers) is { } buffers)
            {
                return buffers;
            }

            lock (_buffersGate)
            {
                if (_buffers is null)
                {
                    BufferPool pool = new(Port, options.PooledBufferSize, options.PooledBufferCount);
                    OnPoolCreated(pool);
                    Volatile.Write(ref _buffers, pool);
                }

                return _buffers;
            }
        }
    }

    /// <summary>Pooled buffers the user holds now (none before the pool exists).</summary>
    public int BuffersLent => Volatile.Read(ref _buffers)?.Lent ?? 0;

    /// <summary>Notifications (Remove included) delivered by this port's dequeues so far.</summary>
    public long NotificationsDelivered => Volatile.Read(ref _notificationsDelivered);

    /// <summary>Operation completions delivered by this port's dequeues so far.</summary>
    public long CompletionsDelivered => Volatile.Read(ref _completionsDelivered);

    /// <summary>Posted packets delivered by this port's dequeues so far.</summary>
    public long PostsDelivered => Volatile.Read(ref _postsDelivered);

    /// <summary>
    /// Entries the port holds ready for a dequeue now (posts, Remove notifications, and what did not fit a dequeuer's
    /// array); not what the kernel has yet to report. For the meter: it may walk a queue.
    /// </summary>
    public abstract int QueueLength { get; }

    /// <summary>Whether a pooled receive could find a buffer now.</summary>
    public abstract bool HasFreeBuffer { get; }

    /// <summary>After <see cref="IDisposable.Dispose"/>: whether the kernel let go of every operation's memory.</summary>
    public abstract bool ReleasedEverything { get; }

    /// <summary>Makes the engine for this machine: the Linux engine (io_uring or epoll) or the Windows engine.</summary>
    /// <exception cref="PlatformNotSupportedException">The system is not supported, or a refused backend was asked for.</exception>
    public static PortEngine Create(PortCore port, CompletionPortOptions options)
    {
        if (OperatingSystem.IsWindows())
        {
            return WindowsEngine.Create(port, options);
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("SockNotify's CompletionPort supports Linux and Windows.");
        }

        return options.Backend == CompletionPortBackend.Iocp
            ? throw new PlatformNotSupportedException("The Iocp backend is Windows'; Linux has io_uring and epoll.")
            : LinuxEngine.Create(port, options);
    }

    /// <summary>
    /// Dequeues up to <c>entries.Length</c> entries, waiting at most <paramref name="millisecondsTimeout"/>: returns
    /// as soon as there is one, never before the timeout otherwise, and PortClosed once the port is disposed.
    /// </summary>
    public CompletionWaitResult Dequeue(Span<CompletionEntry> entries, int millisecondsTimeout, out int count)
    {
        count = 0;
        if (entries.IsEmpty)
        {
            return CompletionWaitResult.Success;
        }

        t_dequeuedFrom = 0;
        long start = millisecondsTimeout > 0 ? Stopwatch.GetTimestamp() : 0;
        int waitMilliseconds = millisecondsTimeout;
        while (true)
        {
            int produced = Wait(entries, waitMilliseconds);
            if (produced == PortClosed)
            {
                return CompletionWaitResult.PortClosed;
            }

            if (produced > 0)
            {
                WrapAcceptedSockets(entries[..produced]);
                CountDelivered(entries[..produced]);
                t_dequeuedFrom = _identity;
                count = produced;
                return CompletionWaitResult.Success;
            }

            if (millisecondsTimeout == Timeout.Infinite)
            {
                continue;
            }

            // Woken or interrupted with nothing to deliver: wait out the rest, rounding up so as never to return early.
            double remaining = millisecondsTimeout - Stopwatch.GetElapsedTime(start).TotalMilliseconds;
            if (remaining <= 0)
            {
                return CompletionWaitResult.TimedOut;
            }

            waitMilliseconds = (int)Math.Ceiling(remaining);
        }
    }

    /// <summary>
    /// Makes the Sockets of the Accepts about to be delivered, on the dequeuing thread with no lock held (see
    /// <see cref="Operation.SetAccepted"/>). If a wrap throws (only for something worse than a socket error, which
    /// becomes the Accept's result), that Accept's descriptor is closed and every other entry goes back to the queue.
    /// </summary>
    private void WrapAcceptedSockets(Span<CompletionEntry> delivered)
    {
        for (int i = 0; i < delivered.Length; i++)
        {
            if (!delivered[i].HoldsAcceptedDescriptor)
            {
                continue;
            }

            try
            {
                delivered[i] = delivered[i].WithAcceptedSocket();
            }
            catch
            {
                Requeue(delivered[..i]);
                Requeue(delivered[(i + 1)..]);
                throw;
            }
        }
    }

    /// <summary>Adds what one dequeue delivers to the meter's counts: one add per kind delivered, not per entry.</summary>
    private void CountDelivered(ReadOnlySpan<CompletionEntry> delivered)
    {
        int notifications = 0, posts = 0;
        foreach (ref readonly CompletionEntry entry in delivered)
        {
            notifications += entry.Kind == CompletionKind.Notification ? 1 : 0;
            posts += entry.Kind == CompletionKind.Post ? 1 : 0;
        }

        int completions = delivered.Length - notifications - posts;
        if (completions > 0)
        {
            Interlocked.Add(ref _completionsDelivered, completions);
        }

        if (notifications > 0)
        {
            Interlocked.Add(ref _notificationsDelivered, notifications);
        }

        if (posts > 0)
        {
            Interlocked.Add(ref _postsDelivered, posts);
        }
    }

    /// <summary>
    /// Puts back what a dequeue had taken when an exception or the port's disposal ends it, so that nothing the caller
    /// would have received is lost: the next dequeue (or disposal's teardown) finds it, behind what was queued already.
    /// </summary>
    protected void Requeue(ReadOnlySpan<CompletionEntry> taken)
    {
        foreach (ref readonly CompletionEntry entry in taken)
        {
            Post(entry);
        }
    }

    /// <summary>Queues an entry for one dequeuer, waking a waiter if needed.</summary>
    public abstract void Post(in CompletionEntry entry);

    /// <summary>Makes one waiter return (or the next wait, if none is waiting), from any thread.</summary>
    public abstract void Wake();

    /// <summary>Creates the kernel registration. The filter is non-empty and valid.</summary>
    public abstract SocketNotifyResult Add(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger);

    /// <summary>Re-arms an existing kernel registration with a new filter and triggers.</summary>
    public abstract SocketNotifyResult Modify(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger);

    /// <summary>Stops reporting the socket without deleting its kernel registration (one more error or hang-up may come; the port drops it).</summary>
    public abstract SocketNotifyResult Disable(Registration registration);

    /// <summary>Deletes the kernel registration: no wait that starts afterwards reports its token.</summary>
    public abstract SocketNotifyResult Delete(Registration registration);

    /// <summary>Prepares the kernel for operations on a newly associated socket. Under the association's lock.</summary>
    public abstract SocketNotifyResult Associate(Association association);

    /// <summary>Forgets a socket whose association ended and whose operations were cancelled.</summary>
    public abstract void Dissociate(Association association);

    /// <summary>
    /// Disposes a socket whose association and registration this port already ended (<see cref="CompletionPort.CloseSocket"/>).
    /// .NET closes a socket abortively (RST) when a call of another thread holds its handle at that moment, so an
    /// engine that holds handles outside its socket's lock closes it where none does.
    /// </summary>
    public virtual void CloseSocket(Socket socket) => socket.Dispose();

    /// <summary>
    /// Starts an operation already on its side's list, under the association's lock; completions it produces at once
    /// go to the sink. Returns IOPending, or the error that kept it from starting (nothing will be queued).
    /// </summary>
    public abstract SocketError Start(Operation operation, ref CompletionSink sink);

    /// <summary>
    /// Asks the kernel to end an operation it holds, under the association's lock; false when the request could not be
    /// made (a full ring), so that a later cancellation asks again.
    /// </summary>
    public abstract bool Cancel(Operation operation);

    /// <summary>Lets the side's new first operation proceed after the one before it ended outside the engine. Under the lock.</summary>
    public abstract void Advance(ref OperationList side, ref CompletionSink sink);

    /// <summary>Starts a parked pooled receive again after a buffer came back. Under the association's lock.</summary>
    public abstract void Resume(Operation operation, ref CompletionSink sink);

    /// <summary>
    /// Whether the calling thread is handling entries this port's dequeue gave it. Such a thread almost always dequeues
    /// again, and its next wait submits whatever it started meanwhile in one go, so an engine may leave its starts to
    /// that wait instead of entering the kernel once per start; the port's sweep submits them should it not come back.
    /// </summary>
    protected bool CallerWillWaitAgain => t_dequeuedFrom == _identity;

    /// <summary>After <see cref="Start"/>, outside the lock: submits what it wrote unless a waiting thread will.</summary>
    public virtual void SubmitStarted()
    {
    }

    /// <summary>Submits at once whatever was started and not yet submitted.</summary>
    public virtual void Flush()
    {
    }

    /// <summary>
    /// Port disposal, before it returns: stops new work from reaching the kernel and waits until the kernel has let go
    /// of every operation, including those of <paramref name="ended"/>, the associations disposal just ended.
    /// </summary>
    public abstract void Quiesce(List<Association> ended);

    /// <summary>Puts a buffer the user gave back where pooled receives find it.</summary>
    public abstract void ReturnBuffer(PooledBuffer buffer);

    public abstract void Dispose();

    /// <summary>Makes the pool now if no pooled receive has (its buffers must be in place before the first one starts).</summary>
    public void EnsurePool() => _ = Buffers;

    /// <summary>The port this engine serves; engines call back into its registrations, operations and lifetime only.</summary>
    protected PortCore Port { get; } = port;

    /// <summary>The pool if a pooled receive made it, for disposal.</summary>
    protected BufferPool? CreatedBuffers => Volatile.Read(ref _buffers);

    /// <summary>Lets the engine offer a new pool's buffers to the kernel before anyone uses it.</summary>
    protected virtual void OnPoolCreated(BufferPool pool)
    {
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMilliseconds"/> (-1: forever, 0: poll) and writes what is deliverable; see the
    /// class remarks. Returns the count written, 0, or <see cref="PortClosed"/>.
    /// </summary>
    protected abstract int Wait(Span<CompletionEntry> entries, int timeoutMilliseconds);
}
