using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    internal static unsafe partial class Epoll
    {
        internal const int EPOLL_CLOEXEC = 0x80000;

        internal const int EPOLL_CTL_ADD = 1;
        internal const int EPOLL_CTL_DEL = 2;
        internal const int EPOLL_CTL_MOD = 3;

        internal const uint EPOLLIN = 0x001;
        internal const uint EPOLLOUT = 0x004;
        internal const uint EPOLLERR = 0x008;
        internal const uint EPOLLHUP = 0x010;
        internal const uint EPOLLRDHUP = 0x2000;
        internal const uint EPOLLONESHOT = 1u << 30;
        internal const uint EPOLLET = 1u << 31;

        /// <summary>
        /// <c>struct epoll_event</c>. On x86-64 the kernel declares it packed (12 bytes, data at offset 4);
        /// other architectures align data to 8. Only the x86-64 layout is declared here, and
        /// <see cref="EnsureSupportedLayout"/> refuses the others rather than corrupt events.
        /// </summary>
        [StructLayout(LayoutKind.Sequential, Pack = 4)]
        internal struct EpollEvent
        {
            public uint Events;
            public ulong Data;
        }

        internal static void EnsureSupportedLayout()
        {
            if (RuntimeInformation.ProcessArchitecture != Architecture.X64)
            {
                throw new PlatformNotSupportedException(
                    $"SockNotify's Linux engines support x86-64 only; this process runs on {RuntimeInformation.ProcessArchitecture}.");
            }
        }

        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_create1", SetLastError = true)]
        internal static partial int Create1(int flags);

        // The socket is passed as a SafeHandle so that it cannot be closed (and its number reused) mid-call.
        // SAFETY: ev points to one event the kernel reads during the call (it keeps a copy, not the pointer).
        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
        internal static partial int Ctl(int epfd, int op, SafeSocketHandle fd, EpollEvent* ev);

        // SAFETY: fd is a descriptor the caller owns and keeps open for the call (the wake eventfd), never a socket.
        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
        internal static partial int Ctl(int epfd, int op, int fd, EpollEvent* ev);

        // SAFETY: the kernel writes up to maxEvents events at events, so the buffer must hold that many.
        internal static int Wait(int epfd, EpollEvent* events, int maxEvents, int timeout) =>
            Faults.Ask(Faults.Call.EpollWait, epfd) is { Fails: true } fault ? fault.Fail() : WaitCore(epfd, events, maxEvents, timeout);

        [LibraryImport(Libraries.Libc, EntryPoint = "epoll_wait", SetLastError = true)]
        private static partial int WaitCore(int epfd, EpollEvent* events, int maxEvents, int timeout);
    }
}
