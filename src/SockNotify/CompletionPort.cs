using System.Net.Sockets;
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
/// only by the thread that handled the notification, that cannot happen. Closing the socket instead
/// (<see cref="CloseSocket"/>, or disposing it) deregisters it silently, with no Remove notification.</para>
/// <para><b>Disable.</b> No notification is produced for a disabled registration; one already dequeued by another
/// thread before Disable returned may still reach that thread.</para>
/// <para><b>Threads and cost.</b> Every member is thread-safe. A dequeue makes one <c>epoll_wait</c> (more only after a
/// signal interrupts it or when it wakes with nothing to deliver; with the io_uring backend, also one
/// <c>io_uring_enter</c> when operations wait to be submitted, and busy with completions it looks at epoll only every
/// other time) and allocates nothing; an Enable, Disable or Remove
/// of an existing registration makes one <c>epoll_ctl</c> and allocates nothing. Creating a registration allocates
/// its bookkeeping (about a hundred bytes).</para>
/// <para><b>Operations.</b> A socket associated with <see cref="Associate"/> takes overlapped operations (Accept,
/// Connect, Receive, ReceivePooled, ReceiveFrom, Send, SendTo), each completing exactly once on this port with its
/// context; see <see cref="Associate"/> and <see cref="Receive(Socket, Memory{byte}, SocketFlags, object?)"/>.
/// <see cref="CloseSocket"/> ends a socket in order, as <c>closesocket</c> does.</para>
/// <para><b>Order and fairness.</b> Queued entries and the kernel's readiness take turns at the front of the caller's
/// array, so neither starves the other, and one thread dequeues completions in the order they happened.</para>
/// <para><b>Disposal.</b> <see cref="Dispose"/> wakes every waiting thread with <see cref="CompletionWaitResult.PortClosed"/>,
/// drops queued packets and registrations (no Remove notifications), and makes later calls throw
/// <see cref="ObjectDisposedException"/>. Operations in flight are cancelled, and the kernel has let go of their
/// buffers when it returns (it waits up to 5 s for that; memory the kernel still holds then is leaked, never reused). Registered sockets stay open and may be registered with another port.</para>
/// </remarks>
public sealed partial class CompletionPort : IDisposable
{
    private readonly PortCore _core;

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

        _core = new PortCore(this, options);
    }

    /// <summary>The kernel interface that performs this port's overlapped operations (never Automatic).</summary>
    public CompletionPortBackend Backend => _core.Engine.Backend;

    /// <summary>The port's inside (tests reach its tables through it).</summary>
    internal PortCore Core => _core;

    /// <summary>The number of live registrations (for diagnostics and leak tests).</summary>
    internal int RegistrationCount => _core.Registrations.Count;

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
        _core.Lifetime.Enter();
        try
        {
            foreach (ref SocketNotifyRegistration registration in registrations)
            {
                registration.RegistrationResult = _core.Registrar.Apply(registration, queueRemoveNotification: true);
            }

            return _core.Engine.Dequeue(entries, millisecondsTimeout, out receivedEntryCount);
        }
        finally
        {
            _core.Lifetime.Exit();
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
        _core.Lifetime.Enter();
        try
        {
            _core.Engine.Post(new CompletionEntry(completionKey, bytesTransferred, context, CompletionKind.Post));
        }
        finally
        {
            _core.Lifetime.Exit();
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
        _core.Lifetime.Enter();
        try
        {
            return _core.Registrar.Apply(
                new SocketNotifyRegistration { Socket = socket, Operation = SocketNotifyOperation.Remove }, queueRemoveNotification: false);
        }
        finally
        {
            _core.Lifetime.Exit();
        }
    }

    /// <summary>
    /// Closes a socket in order, as Winsock's <c>closesocket</c> does: what this port holds for it ends first, then the
    /// socket is disposed. Its started operations complete with <see cref="SocketError.OperationAborted"/> (an operation
    /// that finished first keeps its result), each exactly once; a notification registration ends silently, with no
    /// Remove notification; and the cancellations are in the kernel before the descriptor closes, so the port holds
    /// nothing of the socket and the kernel drops it as its cancelled requests end (at once for requests waiting for data
    /// or connections): the peer sees the end of the connection (FIN, or RST when received data was left unread) and a
    /// listener stops listening. Prefer it to <see cref="Socket.Dispose()"/>, which completes the operations only at the
    /// port's next sweep.
    /// </summary>
    /// <param name="socket">Any socket: one with nothing on this port is just disposed.</param>
    /// <exception cref="ArgumentNullException"><paramref name="socket"/> is null.</exception>
    /// <exception cref="InvalidOperationException">Another port holds the socket (close it there); it is left open.</exception>
    /// <exception cref="ObjectDisposedException">The port is disposed.</exception>
    /// <exception cref="IOException">The kernel kept refusing the cancellations (io_uring: a ring that cannot go on); the socket is closed all the same.</exception>
    public void CloseSocket(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        _core.Lifetime.Enter();
        try
        {
            SafeSocketHandle handle = socket.SafeHandle;
            try
            {
                try
                {
                    _core.Registrar.EndBeforeClose(handle);
                }
                catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception)
                {
                    _core.Engine.CloseSocket(socket); // The kernel refused the cancellations: its requests hold the socket until they end.
                    throw;
                }

                _core.Engine.CloseSocket(socket);
            }
            finally
            {
                _core.Registrar.EndClose(handle);
            }
        }
        finally
        {
            _core.Lifetime.Exit();
        }
    }

    /// <summary>
    /// Closes the port: waiting threads return <see cref="CompletionWaitResult.PortClosed"/>, queued packets are
    /// dropped, registrations end without Remove notifications, and later calls throw.
    /// </summary>
    public void Dispose() => _core.Dispose();

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
}
