using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using SockNotify.Backends;
using SockNotify.Backends.Epoll;
using SockNotify.Internal;

namespace SockNotify;

/// <summary>
/// An I/O completion port that delivers socket state notifications, overlapped operation completions and posted
/// packets to any number of threads: the .NET shape of Winsock's <c>ProcessSocketNotifications</c> and of overlapped
/// I/O over an I/O completion port, implemented on Linux with epoll (notifications) and io_uring (operations, with
/// an epoll emulation where io_uring is unavailable).
/// </summary>
/// <remarks>
/// <para><b>Registrations.</b> A socket is registered with one port under a completion key (any object, typically its
/// context) by an Enable item, and changed by later Enable (re-arm, new filter and triggers, same key), Disable and
/// Remove items. Items are applied in order, each with its own <see cref="SocketNotifyRegistration.RegistrationResult"/>;
/// a bad item never throws and never stops the rest of its batch.</para>
/// <para><b>Notifications.</b> A notification is one <see cref="CompletionEntry"/> whose <see cref="CompletionEntry.Events"/>
/// holds every requested condition found at once (In, Out, Hangup) plus Err, which is delivered whatever the filter.
/// Notifications may be spurious: a condition reported as ready may be gone by the time the socket is used (another
/// thread read the data, say), so sockets must be non-blocking and WouldBlock must be treated as "wait again".
/// Level registrations report a condition on every dequeue while it holds; Edge registrations report it when it
/// becomes true, so an Edge user must drain the socket until WouldBlock. OneShot registrations report once, to one
/// thread, and are then disabled until an Enable re-arms them: the pattern for many threads.</para>
/// <para><b>Remove.</b> A successful Remove queues exactly one <see cref="SocketNotifyEvents.Remove"/> notification for
/// the registration's key, and it is the last: no dequeue call that starts after a thread received it returns another
/// notification of that registration, so the key's state may be freed then. A notification dequeued by another thread
/// before the Remove was applied may still be in that thread's hands; with OneShot registrations, re-armed or removed
/// only by the thread that handled the notification, that cannot happen. Disposing the socket instead deregisters it
/// silently, with no Remove notification.</para>
/// <para><b>Disable.</b> No notification is produced for a disabled registration; one already dequeued by another
/// thread before Disable returned may still reach that thread.</para>
/// <para><b>Threads and cost.</b> Every member is thread-safe. A dequeue makes one <c>epoll_wait</c> (more only after a
/// signal interrupts it or when it wakes with nothing to deliver) and allocates nothing; an Enable, Disable or Remove
/// of an existing registration makes one <c>epoll_ctl</c> and allocates nothing. Creating a registration allocates
/// its bookkeeping (about a hundred bytes).</para>
/// <para><b>Operations.</b> A socket associated with <see cref="Associate"/> takes overlapped operations (Accept,
/// Connect, Receive, ReceivePooled, ReceiveFrom, Send, SendTo), each completing exactly once on this port with its
/// context; see <see cref="Associate"/> and <see cref="Receive(Socket, Memory{byte}, SocketFlags, object?)"/>.</para>
/// <para><b>Disposal.</b> <see cref="Dispose"/> wakes every waiting thread with <see cref="CompletionWaitResult.PortClosed"/>,
/// drops queued packets and registrations (no Remove notifications), and makes later calls throw
/// <see cref="ObjectDisposedException"/>. Registered sockets stay open and may be registered with another port.</para>
/// </remarks>
public sealed partial class CompletionPort : IDisposable
{
    /// <summary>The most kernel events one dequeue call asks for, which bounds its stack use (16 bytes each).</summary>
    private const int MaxReadyEventsPerWait = 512;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1859", Justification = "A Windows backend slots in here.")]
    private readonly INotificationBackend _backend;
    private readonly IOperationBackend _operations;
    private readonly RegistrationTable _registrations = new();
    private readonly OperationTable _operationTable = new();

    /// <summary>Posted packets and Remove notifications, in the order they were queued.</summary>
    private readonly ConcurrentQueue<CompletionEntry> _queued = new();

    /// <summary>1 while a wake is signalled for <see cref="_queued"/> and no dequeuer has taken it yet.</summary>
    private int _wakeSignalled;

    /// <summary>
    /// Threads in, or about to enter, a blocking wait. Each counts itself before it looks at the queue and at the
    /// operations to submit, so work added while no thread is counted needs no wake: the next waiter sees it.
    /// </summary>
    private int _sleepers;

    /// <summary>
    /// Calls inside the port plus one for the port itself (released by <see cref="Dispose"/>). The backend is disposed
    /// when it reaches zero, so a thread still in <c>epoll_wait</c> never sees its descriptors closed or reused.
    /// </summary>
    private int _users = 1;

    /// <summary>1 once <see cref="Dispose"/> has begun; exactly one caller releases the port's own reference.</summary>
    private int _disposeStarted;

    private volatile bool _disposed;

    /// <summary>Creates a port with the default <see cref="CompletionPortOptions"/>.</summary>
    /// <exception cref="PlatformNotSupportedException">The operating system or architecture is not supported yet.</exception>
    public CompletionPort()
        : this(new CompletionPortOptions())
    {
    }

    /// <summary>Creates a port with the given options.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="options"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A pooled buffer setting is out of range.</exception>
    /// <exception cref="PlatformNotSupportedException">
    /// The operating system or architecture is not supported yet, or <see cref="CompletionPortBackend.IoUring"/> was
    /// asked for and the kernel refuses it.
    /// </exception>
    public CompletionPort(CompletionPortOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PooledBufferSize, 1, nameof(options.PooledBufferSize));
        if (options.PooledBufferCount is < 1 or > 32768 || !int.IsPow2(options.PooledBufferCount))
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.PooledBufferCount,
                $"{nameof(options.PooledBufferCount)} must be a power of two from 1 to 32768.");
        }

        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("SockNotify's CompletionPort supports Linux only so far.");
        }

        EpollBackend epoll = new();
        _backend = epoll;
        try
        {
            (_operations, Backend) = CreateOperationBackend(options, epoll);
        }
        catch
        {
            epoll.Dispose();
            throw;
        }
    }

    /// <summary>The kernel interface that performs this port's overlapped operations (never Automatic).</summary>
    public CompletionPortBackend Backend { get; }

    /// <summary>The number of live registrations (for diagnostics and leak tests).</summary>
    internal int RegistrationCount => _registrations.Count;

    internal RegistrationTable Registrations => _registrations;

    internal bool IsDisposed => _disposed;

    /// <summary>
    /// Applies <paramref name="registrations"/> in order, writing each item's result, then dequeues up to
    /// <c>entries.Length</c> entries as <see cref="GetQueuedCompletionStatus(Span{CompletionEntry}, out int, int)"/> does. With an empty
    /// <paramref name="entries"/> it only applies the registrations and returns <see cref="CompletionWaitResult.Success"/>.
    /// </summary>
    /// <param name="registrations">The items to apply; may be empty.</param>
    /// <param name="millisecondsTimeout">How long to wait for an entry: 0 returns at once, <see cref="Timeout.Infinite"/> waits forever.</param>
    /// <param name="entries">Receives the dequeued entries.</param>
    /// <param name="receivedEntryCount">How many entries were written to <paramref name="entries"/>.</param>
    /// <returns>Success, TimedOut (nothing arrived in time) or PortClosed (the port was disposed while waiting).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="millisecondsTimeout"/> is less than -1.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public CompletionWaitResult ProcessSocketNotifications(
        Span<SocketNotifyRegistration> registrations,
        int millisecondsTimeout,
        Span<CompletionEntry> entries,
        out int receivedEntryCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(millisecondsTimeout, Timeout.Infinite);
        Enter();
        try
        {
            foreach (ref SocketNotifyRegistration registration in registrations)
            {
                registration.RegistrationResult = Apply(registration);
            }

            return Dequeue(entries, millisecondsTimeout, out receivedEntryCount);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Applies <paramref name="registrations"/> in order, writing each item's result, without dequeuing.</summary>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public void ProcessSocketNotifications(Span<SocketNotifyRegistration> registrations) =>
        ProcessSocketNotifications(registrations, 0, [], out _);

    /// <summary>Applies one registration item, writing its result, without dequeuing.</summary>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public void ProcessSocketNotifications(ref SocketNotifyRegistration registration) =>
        ProcessSocketNotifications(new Span<SocketNotifyRegistration>(ref registration));

    /// <summary>
    /// Dequeues up to <c>entries.Length</c> entries (Win32's <c>GetQueuedCompletionStatusEx</c>): socket notifications,
    /// Remove notifications and posted packets. Returns as soon as at least one entry is available, or when the
    /// timeout elapses (never earlier), or when the port is disposed.
    /// </summary>
    /// <param name="entries">Receives the dequeued entries.</param>
    /// <param name="removedEntryCount">How many entries were written to <paramref name="entries"/>.</param>
    /// <param name="millisecondsTimeout">0 returns at once, <see cref="Timeout.Infinite"/> waits forever.</param>
    /// <returns>Success, TimedOut (nothing arrived in time) or PortClosed (the port was disposed while waiting).</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="millisecondsTimeout"/> is less than -1.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public CompletionWaitResult GetQueuedCompletionStatus(Span<CompletionEntry> entries, out int removedEntryCount, int millisecondsTimeout) =>
        ProcessSocketNotifications([], millisecondsTimeout, entries, out removedEntryCount);

    /// <summary>
    /// Dequeues up to <c>entries.Length</c> entries, waiting at most <paramref name="timeout"/>
    /// (<see cref="Timeout.InfiniteTimeSpan"/> waits forever); see the overload that takes milliseconds.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite) or more than <see cref="int.MaxValue"/> milliseconds.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public CompletionWaitResult GetQueuedCompletionStatus(Span<CompletionEntry> entries, out int removedEntryCount, TimeSpan timeout) =>
        GetQueuedCompletionStatus(entries, out removedEntryCount, ToMilliseconds(timeout));

    /// <summary>
    /// Applies <paramref name="registrations"/>, then dequeues waiting at most <paramref name="timeout"/>
    /// (<see cref="Timeout.InfiniteTimeSpan"/> waits forever); see the overload that takes milliseconds.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite) or more than <see cref="int.MaxValue"/> milliseconds.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public CompletionWaitResult ProcessSocketNotifications(
        Span<SocketNotifyRegistration> registrations, TimeSpan timeout, Span<CompletionEntry> entries, out int receivedEntryCount) =>
        ProcessSocketNotifications(registrations, ToMilliseconds(timeout), entries, out receivedEntryCount);

    /// <summary>
    /// Queues a packet that one dequeuing thread will receive as it is (Win32's <c>PostQueuedCompletionStatus</c>),
    /// waking a waiter if needed. Packets are dequeued in the order they were posted, each exactly once.
    /// </summary>
    /// <param name="completionKey">Returned as <see cref="CompletionEntry.CompletionKey"/>.</param>
    /// <param name="bytesTransferred">Returned as <see cref="CompletionEntry.BytesTransferred"/>.</param>
    /// <param name="context">Returned as <see cref="CompletionEntry.Context"/>.</param>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public void PostQueuedCompletionStatus(object? completionKey, uint bytesTransferred, object? context)
    {
        Enter();
        try
        {
            Queue(new CompletionEntry(completionKey, bytesTransferred, context));
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Removes the socket's registration and takes its Remove notification itself, the seed's <c>DeregisterAndWait</c>
    /// without its flaw: nothing else is dequeued, so no other socket's notification is dropped, and no other thread
    /// can receive this Remove. When it returns <see cref="SocketNotifyResult.Success"/> the registration is over
    /// exactly as if this thread had dequeued its Remove: no dequeue call that starts afterwards returns a
    /// notification of it, and its key's state may be freed. It never blocks: this port completes Remove at once.
    /// </summary>
    /// <param name="socket">The registered socket.</param>
    /// <returns>The result of the Remove item (see <see cref="SocketNotifyResult"/>).</returns>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    public SocketNotifyResult DeregisterAndWait(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Enter();
        try
        {
            return Apply(new SocketNotifyRegistration { Socket = socket, Operation = SocketNotifyOperation.Remove }, queueRemoveNotification: false);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>
    /// Closes the port: waiting threads return <see cref="CompletionWaitResult.PortClosed"/>, queued packets are
    /// dropped, registrations end without Remove notifications, and later calls throw.
    /// </summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) != 0)
        {
            return;
        }

        _disposed = true;
        LeaveSweeper();
        _registrations.Clear();
        // One wake reaches one waiter; each waiter that sees the port closed passes the wake on (see Dequeue).
        _backend.Wake();
        Exit();
    }

    /// <summary>Rounds up, so that a timeout of a fraction of a millisecond still waits rather than polls.</summary>
    private static int ToMilliseconds(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return Timeout.Infinite;
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(timeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(timeout, TimeSpan.FromMilliseconds(int.MaxValue));
        return (int)Math.Ceiling(timeout.TotalMilliseconds);
    }

    private SocketNotifyResult Apply(in SocketNotifyRegistration item, bool queueRemoveNotification = true)
    {
        SocketNotifyOperation operation = item.Operation;
        if (operation == SocketNotifyOperation.None)
        {
            return SocketNotifyResult.Success;
        }

        if (_disposed)
        {
            return SocketNotifyResult.PortClosed; // Disposed while this batch was being applied.
        }

        if (item.Socket is null
            || operation is not (SocketNotifyOperation.Enable or SocketNotifyOperation.Disable or SocketNotifyOperation.Remove)
            || (operation == SocketNotifyOperation.Enable && !IsValidEnable(item.EventFilter, item.TriggerFlags)))
        {
            return SocketNotifyResult.InvalidRegistration;
        }

        SafeSocketHandle handle = item.Socket.SafeHandle;
        while (true)
        {
            Registration? registration = SocketOwners.Find(handle);
            if (handle.IsClosed || handle.IsInvalid)
            {
                // Closing the socket deregistered it in the kernel; drop our side silently, as the seed specifies.
                if (registration is not null)
                {
                    EndClosed(registration);
                }

                return SocketNotifyResult.SocketClosed;
            }

            if (registration is null)
            {
                if (operation != SocketNotifyOperation.Enable)
                {
                    return SocketNotifyResult.NotRegistered;
                }

                if (TryCreate(handle, item, out SocketNotifyResult created))
                {
                    return created;
                }

                continue; // Another thread registered the socket first: apply the item to its registration.
            }

            if (registration.Port != this)
            {
                if (!registration.Port.IsDisposed)
                {
                    return SocketNotifyResult.RegisteredWithAnotherPort;
                }

                // The other port is closing and will release the socket; take it over.
                SocketOwners.Release(registration);
                continue;
            }

            if (registration is Association)
            {
                return SocketNotifyResult.InvalidRegistration; // Associated for overlapped operations instead.
            }

            lock (registration)
            {
                if (registration.IsRemoved)
                {
                    continue; // Removed while we looked it up: start again from the owner table.
                }

                return operation switch
                {
                    SocketNotifyOperation.Enable => Rearm(registration, item.EventFilter, item.TriggerFlags),
                    SocketNotifyOperation.Disable => Disable(registration),
                    _ => Remove(registration, queueRemoveNotification),
                };
            }
        }
    }

    private static bool IsValidEnable(SocketNotifyEvents filter, SocketNotifyTrigger trigger)
    {
        const SocketNotifyTrigger known = SocketNotifyTrigger.Level | SocketNotifyTrigger.Edge
            | SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Persistent;
        return filter != SocketNotifyEvents.None
            && (filter & ~SocketNotifyEvents.All) == 0
            && (trigger & ~known) == 0
            && ((trigger & SocketNotifyTrigger.Level) != 0) != ((trigger & SocketNotifyTrigger.Edge) != 0)
            && (trigger & (SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Persistent))
                != (SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Persistent);
    }

    /// <summary>
    /// Creates a registration. False when the item must be looked up again: another thread registered the socket
    /// first, or a closed socket's stale entry held the descriptor number and was cleared.
    /// </summary>
    private bool TryCreate(SafeSocketHandle handle, in SocketNotifyRegistration item, out SocketNotifyResult result)
    {
        Registration registration = _registrations.Allocate(this, handle, item.CompletionKey);
        // Locked before it is published, so that other threads' items for this socket wait until the kernel knows it.
        lock (registration)
        {
            if (SocketOwners.TryClaim(registration) is { } owner)
            {
                RegistrationTable.EndSilently(registration);
                if (owner.Handle == handle)
                {
                    result = default;
                    return false; // Another thread registered this socket first: apply the item to its registration.
                }

                if (owner.Handle.IsClosed)
                {
                    // A socket closed without Remove left its entry, and this socket got its number: end it silently.
                    EndClosed(owner);

                    result = default;
                    return false;
                }

                // Another open Socket object wraps the same descriptor and is registered.
                result = owner.Port == this ? SocketNotifyResult.SystemError : SocketNotifyResult.RegisteredWithAnotherPort;
                return true;
            }

            // Dispose sets the flag before it clears the table, so either it is seen here or the table's Clear ends
            // this registration after the kernel learnt of it (and the kernel side dies with the epoll descriptor).
            if (_disposed || registration.IsRemoved)
            {
                RegistrationTable.EndSilently(registration);
                result = SocketNotifyResult.PortClosed;
                return true;
            }

            // Deliverable before the kernel can report anything, or a first edge could be dropped.
            registration.Deliverable = item.EventFilter | SocketNotifyEvents.Err;
            result = _backend.Add(handle, registration.Token, item.EventFilter, item.TriggerFlags);
            if (result != SocketNotifyResult.Success)
            {
                RegistrationTable.EndSilently(registration);
            }

            return true;
        }
    }

    private SocketNotifyResult Rearm(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger)
    {
        SocketNotifyEvents previous = registration.Deliverable;
        registration.Deliverable = filter | SocketNotifyEvents.Err;
        SocketNotifyResult result = _backend.Modify(registration.Handle, registration.Token, filter, trigger);
        if (result != SocketNotifyResult.Success)
        {
            registration.Deliverable = previous;
        }

        return result;
    }

    private SocketNotifyResult Disable(Registration registration)
    {
        registration.Deliverable = SocketNotifyEvents.None;
        return _backend.Disable(registration.Handle, registration.Token);
    }

    private SocketNotifyResult Remove(Registration registration, bool queueNotification)
    {
        if (!registration.TryMarkRemoved())
        {
            return SocketNotifyResult.NotRegistered; // Ended meanwhile by its socket's close or the port's disposal.
        }

        SocketNotifyResult result = _backend.Delete(registration.Handle);
        _registrations.Free(registration);
        if (result == SocketNotifyResult.Success && queueNotification)
        {
            // Queued only after the kernel forgot the socket and the registration stopped delivering, so it is last.
            Queue(new CompletionEntry(registration.CompletionKey, (uint)SocketNotifyEvents.Remove, null));
        }

        return result;
    }

    internal void Queue(in CompletionEntry entry)
    {
        _queued.Enqueue(entry);
        SignalQueued();
    }

    /// <summary>
    /// Wakes one waiter for the queue if a thread sleeps and no wake is pending yet. A waiter counts itself in
    /// <see cref="_sleepers"/> (a full fence) before it looks at the queue, and the queue's enqueue is a full fence
    /// before the count is read here, so either the waiter sees the entry or this sees the waiter. The flag is set only
    /// by the poster that then writes the wake, and cleared only by a dequeuer that then looks at the queue, so no
    /// entry waits unseen while every thread sleeps.
    /// </summary>
    private void SignalQueued()
    {
        Interlocked.MemoryBarrier();
        if (Volatile.Read(ref _sleepers) != 0
            && Volatile.Read(ref _wakeSignalled) == 0 && Interlocked.Exchange(ref _wakeSignalled, 1) == 0)
        {
            _backend.Wake();
        }
    }

    private CompletionWaitResult Dequeue(Span<CompletionEntry> entries, int millisecondsTimeout, out int count)
    {
        count = 0;
        if (entries.IsEmpty)
        {
            return CompletionWaitResult.Success;
        }

        long start = millisecondsTimeout > 0 ? Stopwatch.GetTimestamp() : 0;
        Span<ReadyEvent> ready = stackalloc ReadyEvent[Math.Min(entries.Length, MaxReadyEventsPerWait)];
        int waitMilliseconds = millisecondsTimeout;
        while (true)
        {
            int readyCount;
            if (waitMilliseconds == 0)
            {
                readyCount = _operations.Wait(ready, 0);
            }
            else
            {
                Interlocked.Increment(ref _sleepers);
                try
                {
                    // Queued entries are ready now: poll the kernel without blocking, then take both.
                    readyCount = _operations.Wait(ready, _queued.IsEmpty ? waitMilliseconds : 0);
                }
                finally
                {
                    Interlocked.Decrement(ref _sleepers);
                }
            }

            if (_disposed)
            {
                _backend.Wake(); // Pass the disposal wake on to the next waiter.
                return CompletionWaitResult.PortClosed;
            }

            // Every returning waiter clears the wake flag before it looks at the queue (a full fence orders the two),
            // so an entry queued while the flag was set is either seen below or signals a new wake.
            if (Volatile.Read(ref _wakeSignalled) != 0)
            {
                Interlocked.Exchange(ref _wakeSignalled, 0);
            }

            CompletionSink sink = new(entries, this);
            Deliver(ready[..readyCount], ref sink);
            _operations.Reap(ref sink);
            int produced = sink.Count + DrainQueue(entries[sink.Count..]);
            if (!_queued.IsEmpty || _operations.CompletionsWaiting)
            {
                SignalQueued(); // More than fit here: let another waiter take the rest.
            }

            if (produced > 0)
            {
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
    /// Turns kernel readiness into notifications, dropping stale tokens and what the registration does not deliver,
    /// and hands an associated socket's readiness to the operations backend.
    /// </summary>
    private void Deliver(scoped ReadOnlySpan<ReadyEvent> ready, ref CompletionSink sink)
    {
        foreach (ReadyEvent readyEvent in ready)
        {
            // A stale token finds nothing. A closed socket whose file lives on elsewhere (dup, fork) still has a kernel
            // registration that no one can delete any more; its events are dropped here.
            Registration? registration = _registrations.Find(readyEvent.Token);
            if (registration is null || registration.Handle.IsClosed)
            {
                continue;
            }

            if (registration is Association association)
            {
                _operations.OnReady(association, readyEvent.Events, ref sink);
                continue;
            }

            SocketNotifyEvents deliverable = registration.Deliverable;
            SocketNotifyEvents events = readyEvent.Events & deliverable;
            if ((readyEvent.Events & ReadyEvent.Closed) != 0 && deliverable != SocketNotifyEvents.None)
            {
                events |= SocketNotifyEvents.Hangup;
            }

            if (events != SocketNotifyEvents.None)
            {
                sink.Add(new CompletionEntry(registration.CompletionKey, (uint)events, null));
            }
        }
    }

    private int DrainQueue(Span<CompletionEntry> entries)
    {
        if (_queued.IsEmpty || entries.IsEmpty)
        {
            return 0;
        }

        int taken = 0;
        while (taken < entries.Length && _queued.TryDequeue(out CompletionEntry entry))
        {
            entries[taken++] = entry;
        }

        return taken;
    }

    private void Enter()
    {
        while (true)
        {
            int users = Volatile.Read(ref _users);
            ObjectDisposedException.ThrowIf(_disposed || users == 0, this);
            if (Interlocked.CompareExchange(ref _users, users + 1, users) == users)
            {
                return;
            }
        }
    }

    private bool TryEnter()
    {
        while (true)
        {
            int users = Volatile.Read(ref _users);
            if (_disposed || users == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _users, users + 1, users) == users)
            {
                return true;
            }
        }
    }

    private void Exit()
    {
        if (Interlocked.Decrement(ref _users) == 0)
        {
            // Operations first: io_uring cancels and drains its own. Their memory is freed only if the kernel let go.
            _operations.Dispose();
            if (_operations.ReleasedEverything)
            {
                _operationTable.Dispose();
            }

            _backend.Dispose();
            while (_queued.TryDequeue(out CompletionEntry dropped))
            {
                dropped.AcceptSocket?.Dispose(); // A connection no one will dequeue is closed now, not by a finalizer.
            }
        }
    }
}
