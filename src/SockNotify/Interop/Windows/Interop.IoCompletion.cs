using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>The completion port calls: create, associate, post, dequeue, and how a handle's packets are queued.</summary>
    internal static unsafe partial class Kernel32
    {
        internal static readonly nint INVALID_HANDLE_VALUE = -1;

        /// <summary>
        /// <c>FILE_SKIP_COMPLETION_PORT_ON_SUCCESS</c>: an overlapped call that succeeds at once queues no packet, so
        /// its caller completes it; <c>FILE_SKIP_SET_EVENT_ON_HANDLE</c>: the handle's event is not signalled.
        /// </summary>
        internal const byte FILE_SKIP_COMPLETION_PORT_ON_SUCCESS = 0x1;
        internal const byte FILE_SKIP_SET_EVENT_ON_HANDLE = 0x2;

        /// <summary><c>OVERLAPPED_ENTRY</c> (x64: 32 bytes): one dequeued packet.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct OverlappedEntry
        {
            public nuint CompletionKey;
            public NativeOverlapped* Overlapped; // OVERLAPPED, whose layout .NET's NativeOverlapped has
            public nuint Internal;
            public uint NumberOfBytesTransferred;
        }

        // Creates a port (fileHandle INVALID_HANDLE_VALUE, existingPort 0) or associates a handle with one; for an
        // association the return value is existingPort again and must not be owned twice.
        [LibraryImport(Libraries.Kernel32, SetLastError = true)]
        internal static partial nint CreateIoCompletionPort(nint fileHandle, nint existingPort, nuint completionKey, uint numberOfConcurrentThreads);

        /// <summary>Associates a socket with the port: its overlapped operations' packets carry <paramref name="completionKey"/>.</summary>
        [LibraryImport(Libraries.Kernel32, EntryPoint = "CreateIoCompletionPort", SetLastError = true)]
        internal static partial nint AssociateWithPort(System.Net.Sockets.SafeSocketHandle socket, SafeKernelHandle port, nuint completionKey, uint numberOfConcurrentThreads);

        // SAFETY: the kernel writes at most count entries at entries, which the caller keeps for the call.
        [LibraryImport(Libraries.Kernel32, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static partial bool GetQueuedCompletionStatusEx(
            SafeKernelHandle port, OverlappedEntry* entries, uint count, out uint removed, uint milliseconds,
            [MarshalAs(UnmanagedType.Bool)] bool alertable);

        // SAFETY: overlapped is carried, never dereferenced, by the kernel; it may be any value the dequeuer understands.
        [LibraryImport(Libraries.Kernel32, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static partial bool PostQueuedCompletionStatus(SafeKernelHandle port, uint bytesTransferred, nuint completionKey, nint overlapped);

        [LibraryImport(Libraries.Kernel32, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static partial bool SetFileCompletionNotificationModes(nint fileHandle, byte flags);
    }
}
