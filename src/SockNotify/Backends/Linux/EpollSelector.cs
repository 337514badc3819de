using System.ComponentModel;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using SockNotify.Internal;
using static SockNotify.Interop;
using static SockNotify.Interop.Epoll;

namespace SockNotify.Backends.Linux;

/// <summary>
/// One epoll instance and its wake eventfd: the readiness half of every Linux engine. Triggers map one to one: Level
/// is epoll's default, Edge is EPOLLET, OneShot is EPOLLONESHOT. Hangup is requested as EPOLLRDHUP (peer FIN); EPOLLERR
/// and EPOLLHUP are always reported by the kernel. Waking uses an eventfd registered edge-triggered, so that each write
/// wakes one waiter and no one ever needs to read the counter (it would take 2^64 writes to fill it).
/// </summary>
internal sealed unsafe class EpollSelector : IDisposable
{
    private const ulong WakeToken = ulong.MaxValue;

    private readonly SafeFileDescriptorHandle _epoll;
    private readonly SafeFileDescriptorHandle _wakeEvent;

    public EpollSelector()
    {
        EnsureSupportedLayout();
        _epoll = new SafeFileDescriptorHandle(Create1(EPOLL_CLOEXEC));
        if (_epoll.IsInvalid)
        {
            throw NewSystemException("epoll_create1");
        }

        _wakeEvent = new SafeFileDescriptorHandle(EventFd.Create(0, EventFd.EFD_CLOEXEC | EventFd.EFD_NONBLOCK));
        if (_wakeEvent.IsInvalid)
        {
            Exception error = NewSystemException("eventfd");
            _epoll.Dispose();
            throw error;
        }

        EpollEvent registration = new() { Events = EPOLLIN | EPOLLET, Data = WakeToken };
        if (Ctl(_epoll.Fd, EPOLL_CTL_ADD, _wakeEvent.Fd, &registration) != 0)
        {
            Exception error = NewSystemException("epoll_ctl(eventfd)");
            Dispose();
            throw error;
        }
    }

    /// <summary>
    /// The wake eventfd, for io_uring to signal when it posts completions: any waiter then wakes. Valid until
    /// <see cref="Dispose"/>.
    /// </summary>
    public int WakeDescriptor => _wakeEvent.Fd;

    public SocketNotifyResult Add(SafeSocketHandle socket, SlotToken token, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        Control(EPOLL_CTL_ADD, socket, token.Value, ToEpollMask(filter, trigger));

    public SocketNotifyResult Modify(SafeSocketHandle socket, SlotToken token, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        Control(EPOLL_CTL_MOD, socket, token.Value, ToEpollMask(filter, trigger));

    // An empty one-shot mask: epoll still reports EPOLLERR/EPOLLHUP, but only once, after which the item is disarmed.
    public SocketNotifyResult Disable(SafeSocketHandle socket, SlotToken token) =>
        Control(EPOLL_CTL_MOD, socket, token.Value, EPOLLONESHOT);

    public SocketNotifyResult Delete(SafeSocketHandle socket) => Control(EPOLL_CTL_DEL, socket, 0, 0);

    /// <summary>
    /// Waits up to <paramref name="timeoutMilliseconds"/> (-1: forever, 0: poll) for ready events and returns how many
    /// were written. Returns 0 when interrupted or woken, so the caller re-checks its own deadline and state.
    /// </summary>
    public int Wait(Span<ReadyEvent> events, int timeoutMilliseconds)
    {
        // SAFETY: the buffer lives on this stack frame for the whole call and its length is passed to the kernel.
        EpollEvent* kernelEvents = stackalloc EpollEvent[events.Length];
        int count = Interop.Epoll.Wait(_epoll.Fd, kernelEvents, events.Length, timeoutMilliseconds);
        if (count < 0)
        {
            Errno errno = LastErrno();
            if (errno == Errno.EINTR)
            {
                return 0;
            }

            throw NewSystemException("epoll_wait", errno);
        }

        int written = 0;
        for (int i = 0; i < count; i++)
        {
            if (kernelEvents[i].Data != WakeToken)
            {
                events[written++] = new ReadyEvent(new SlotToken(kernelEvents[i].Data), FromEpollMask(kernelEvents[i].Events));
            }
        }

        return written;
    }

    /// <summary>Makes one waiter return (or the next wait, if none is waiting).</summary>
    public void Wake()
    {
        ulong one = 1;
        // EAGAIN means the counter is full, which already reads as "woken"; nothing else can fail on an eventfd.
        _ = EventFd.Write(_wakeEvent.Fd, &one, sizeof(ulong));
    }

    public void Dispose()
    {
        _wakeEvent.Dispose();
        _epoll.Dispose();
    }

    private SocketNotifyResult Control(int operation, SafeSocketHandle socket, ulong token, uint mask)
    {
        EpollEvent registration = new() { Events = mask, Data = token };
        try
        {
            if (Ctl(_epoll.Fd, operation, socket, &registration) == 0)
            {
                return SocketNotifyResult.Success;
            }
        }
        catch (ObjectDisposedException)
        {
            // The owner disposed the socket after the port checked it: the marshaller refused the closed handle.
            return SocketNotifyResult.SocketClosed;
        }

        return LastErrno() switch
        {
            Errno.EBADF => SocketNotifyResult.SocketClosed,
            Errno.ENOMEM or Errno.ENOSPC => SocketNotifyResult.InsufficientResources,
            _ => SocketNotifyResult.SystemError,
        };
    }

    private static uint ToEpollMask(SocketNotifyEvents filter, SocketNotifyTrigger trigger)
    {
        uint mask = 0;
        if ((filter & SocketNotifyEvents.In) != 0)
        {
            mask |= EPOLLIN;
        }

        if ((filter & SocketNotifyEvents.Out) != 0)
        {
            mask |= EPOLLOUT;
        }

        if ((filter & SocketNotifyEvents.Hangup) != 0)
        {
            mask |= EPOLLRDHUP;
        }

        if ((trigger & SocketNotifyTrigger.Edge) != 0)
        {
            mask |= EPOLLET;
        }

        if ((trigger & SocketNotifyTrigger.OneShot) != 0)
        {
            mask |= EPOLLONESHOT;
        }

        return mask;
    }

    private static SocketNotifyEvents FromEpollMask(uint mask)
    {
        SocketNotifyEvents events = SocketNotifyEvents.None;
        if ((mask & EPOLLIN) != 0)
        {
            events |= SocketNotifyEvents.In;
        }

        if ((mask & EPOLLOUT) != 0)
        {
            events |= SocketNotifyEvents.Out;
        }

        if ((mask & EPOLLRDHUP) != 0)
        {
            events |= SocketNotifyEvents.Hangup;
        }

        if ((mask & EPOLLHUP) != 0)
        {
            events |= SocketNotifyEvents.Hangup | ReadyEvent.Closed;
        }

        if ((mask & EPOLLERR) != 0)
        {
            events |= SocketNotifyEvents.Err;
        }

        return events;
    }

    private static Win32Exception NewSystemException(string call) => NewSystemException(call, LastErrno());

    private static Win32Exception NewSystemException(string call, Errno errno) =>
        new((int)errno, $"{call} failed: {Marshal.GetPInvokeErrorMessage((int)errno)}");
}

/// <summary>A kernel readiness report: the registration's token and what is ready.</summary>
internal readonly record struct ReadyEvent(SlotToken Token, SocketNotifyEvents Events)
{
    /// <summary>
    /// Private bit (never public): the socket is closed in both directions, or a stream socket is not connected.
    /// The port turns it into <see cref="SocketNotifyEvents.Hangup"/> whatever the filter (see <see cref="Registration.Filter"/>).
    /// </summary>
    public const SocketNotifyEvents Closed = (SocketNotifyEvents)0x8000;
}
