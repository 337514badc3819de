using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    internal static unsafe partial class EventFd
    {
        internal const int EFD_NONBLOCK = 0x800;
        internal const int EFD_CLOEXEC = 0x80000;

        [LibraryImport(Libraries.Libc, EntryPoint = "eventfd", SetLastError = true)]
        internal static partial int Create(uint initialValue, int flags);

        /// <summary>Adds <paramref name="value"/> to the counter: write(2) of one 8-byte integer.</summary>
        // SAFETY: value points to 8 readable bytes and size is 8 (eventfd reads 8 and refuses fewer with EINVAL).
        [LibraryImport(Libraries.Libc, EntryPoint = "write", SetLastError = true)]
        internal static partial nint Write(int fd, ulong* value, nuint size);
    }
}
