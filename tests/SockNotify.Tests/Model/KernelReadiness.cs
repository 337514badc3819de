using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SockNotify.Tests.Model;

/// <summary>
/// What the kernel says about a socket right now, through poll(2), which neither consumes data nor touches a port's
/// epoll set. Loopback delivery is usually synchronous but may be deferred to a softirq, so a model step that needs a
/// condition (the peer's data arrived, its FIN or RST was processed) waits for it here with a deadline instead of
/// sleeping blindly; once poll sees the condition, epoll's wakeup for it has run too (both happen on the same path).
/// </summary>
internal static partial class KernelReadiness
{
    public const short In = 0x001;
    public const short Err = 0x008;
    public const short Hup = 0x010;
    public const short RdHup = 0x2000;

    /// <summary>How long a condition the model expects may take to appear in the kernel.</summary>
    public const int DeadlineMilliseconds = 5000;

    /// <summary>Waits until every bit of <paramref name="events"/> is reported for the socket; throws on the deadline.</summary>
    public static void WaitFor(Socket socket, short events, string what)
    {
        long deadline = Environment.TickCount64 + DeadlineMilliseconds;
        while (true)
        {
            short now = Current(socket, events, 1);
            if ((now & events) == events)
            {
                return;
            }

            if (Environment.TickCount64 > deadline)
            {
                throw new ModelViolation($"The kernel never reported {what} (poll mask 0x{now:x}) within {DeadlineMilliseconds} ms.");
            }
        }
    }

    /// <summary>Waits until the socket has at least <paramref name="bytes"/> unread bytes (FIONREAD).</summary>
    public static void WaitForBytes(Socket socket, int bytes)
    {
        long deadline = Environment.TickCount64 + DeadlineMilliseconds;
        while (socket.Available < bytes)
        {
            if (Environment.TickCount64 > deadline)
            {
                throw new ModelViolation($"Only {socket.Available} of {bytes} sent bytes arrived within {DeadlineMilliseconds} ms.");
            }

            Current(socket, In, 1);
        }
    }

    private static short Current(Socket socket, short events, int timeoutMilliseconds)
    {
        PollFd fd = new() { Fd = (int)socket.Handle, Events = events };
        return Poll(ref fd, 1, timeoutMilliseconds) > 0 ? fd.Revents : (short)0;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int Poll(ref PollFd fd, nuint count, int timeoutMilliseconds);
}
