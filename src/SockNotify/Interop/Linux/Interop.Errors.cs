using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>
    /// The errno values SockNotify branches on or maps to a <see cref="System.Net.Sockets.SocketError"/>. The values
    /// are the kernel's generic ones (asm-generic/errno-base.h and errno.h), which x86-64 uses; Alpha, MIPS, PA-RISC
    /// and SPARC number errno.h's differently.
    /// </summary>
    internal enum Errno
    {
        EPERM = 1,
        EINTR = 4,
        EBADF = 9,
        EAGAIN = 11, // also EWOULDBLOCK
        ENOMEM = 12,
        EACCES = 13,
        EBUSY = 16,
        EINVAL = 22,
        ENFILE = 23,
        EMFILE = 24,
        ENOSPC = 28,
        EPIPE = 32,
        ENOSYS = 38,
        ETIME = 62,
        ENOTSOCK = 88,
        EDESTADDRREQ = 89,
        EMSGSIZE = 90,
        EPROTONOSUPPORT = 93,
        EOPNOTSUPP = 95, // also ENOTSUP
        EAFNOSUPPORT = 97,
        EADDRINUSE = 98,
        EADDRNOTAVAIL = 99,
        ENETDOWN = 100,
        ENETUNREACH = 101,
        ENETRESET = 102,
        ECONNABORTED = 103,
        ECONNRESET = 104,
        ENOBUFS = 105,
        EISCONN = 106,
        ENOTCONN = 107,
        ESHUTDOWN = 108,
        ETIMEDOUT = 110,
        ECONNREFUSED = 111,
        EHOSTDOWN = 112,
        EHOSTUNREACH = 113,
        EALREADY = 114,
        EINPROGRESS = 115,
        ECANCELED = 125,
    }

    /// <summary>Reads errno right after a call declared with <c>SetLastError = true</c>.</summary>
    internal static Errno LastErrno() => (Errno)Marshal.GetLastPInvokeError();
}
