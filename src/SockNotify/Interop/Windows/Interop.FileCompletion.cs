using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>
    /// Undoing a handle's association with a completion port, which Win32 has no call for: ntdll's
    /// <c>NtSetInformationFile(FileReplaceCompletionInformation)</c> with no port (Windows 8.1 and later).
    /// </summary>
    internal static unsafe partial class Ntdll
    {
        private const int FileReplaceCompletionInformation = 61;

        [StructLayout(LayoutKind.Sequential)]
        private struct IoStatusBlock
        {
            public nint Status;
            public nuint Information;
        }

        [StructLayout(LayoutKind.Sequential)]
        private struct FileCompletionInformation
        {
            public nint Port;
            public nint Key;
        }

        /// <summary>Detaches the socket from its completion port; the NTSTATUS (0: done).</summary>
        internal static int DetachFromCompletionPort(System.Net.Sockets.SafeSocketHandle socket)
        {
            IoStatusBlock status;
            FileCompletionInformation none = default;
            // SAFETY: both structures are locals that outlive the synchronous call.
            return NtSetInformationFile(socket, &status, &none, (uint)sizeof(FileCompletionInformation), FileReplaceCompletionInformation);
        }

        [LibraryImport(Libraries.Ntdll)]
        private static partial int NtSetInformationFile(System.Net.Sockets.SafeSocketHandle handle, IoStatusBlock* status, void* information, uint length, int informationClass);
    }
}
