using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    internal static partial class Kernel32
    {
        // SAFETY: only a handle this process owns, once: a closed handle's value may be given to another object.
        [LibraryImport(Libraries.Kernel32, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static partial bool CloseHandle(nint handle);
    }
}

/// <summary>Owns a kernel object handle released with <c>CloseHandle</c>: the completion port, an AFD helper handle.</summary>
internal sealed class SafeKernelHandle : SafeHandle
{
    public SafeKernelHandle() : base(invalidHandleValue: 0, ownsHandle: true)
    {
    }

    // Both null and INVALID_HANDLE_VALUE (-1) mean a failed call: CreateIoCompletionPort returns null, NtCreateFile
    // leaves the out handle as it was.
    public override bool IsInvalid => handle is 0 or -1;

    protected override bool ReleaseHandle() => Interop.Kernel32.CloseHandle(handle);
}
