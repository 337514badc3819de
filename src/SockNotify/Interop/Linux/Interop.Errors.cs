using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>The errno values SockNotify branches on (Linux, all architectures).</summary>
    internal enum Errno
    {
        EPERM = 1,
        ENOENT = 2,
        EINTR = 4,
        EBADF = 9,
        EAGAIN = 11,
        ENOMEM = 12,
        EBUSY = 16,
        EEXIST = 17,
        EINVAL = 22,
        ENOSPC = 28,
        ETIME = 62,
        ENOBUFS = 105,
        EISCONN = 106,
        EALREADY = 114,
        EINPROGRESS = 115,
        ECANCELED = 125,
    }

    /// <summary>Reads errno right after a call declared with <c>SetLastError = true</c>.</summary>
    internal static Errno LastErrno() => (Errno)Marshal.GetLastPInvokeError();
}
