using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);
}

/// <summary>Owns a file descriptor that is released with close(2): the epoll and eventfd descriptors.</summary>
internal sealed class SafeFileDescriptorHandle : SafeHandle
{
    public SafeFileDescriptorHandle() : base(invalidHandleValue: -1, ownsHandle: true)
    {
    }

    internal SafeFileDescriptorHandle(int fd) : this() => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    internal int Fd => (int)handle;

    // close(2) releases the descriptor even when it fails with EINTR, so it is never retried.
    protected override bool ReleaseHandle() => Interop.Close((int)handle) == 0;
}
