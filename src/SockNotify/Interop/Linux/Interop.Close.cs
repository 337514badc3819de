using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    // SAFETY: only a descriptor this process owns, once: closing a number again may close a file that reused it.
    [LibraryImport(Libraries.Libc, EntryPoint = "close", SetLastError = true)]
    internal static partial int Close(int fd);
}

/// <summary>Owns a file descriptor that is released with close(2): the epoll and eventfd descriptors.</summary>
internal sealed class SafeFileDescriptorHandle : SafeHandle
{
    public SafeFileDescriptorHandle() : base(invalidHandleValue: -1, ownsHandle: true)
    {
    }

    // SAFETY: takes ownership: from here on only this handle closes fd (-1 from a failed call is simply invalid).
    internal SafeFileDescriptorHandle(int fd) : this() => SetHandle(fd);

    public override bool IsInvalid => handle < 0;

    internal int Fd => (int)handle;

    // close(2) releases the descriptor even when it fails with EINTR, so it is never retried.
    protected override bool ReleaseHandle() => Interop.Close((int)handle) == 0;
}
