using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>The socket calls the epoll engine performs on readiness, and the structures io_uring shares with them.</summary>
    internal static unsafe partial class Socket
    {
        internal const int MSG_PEEK = 0x2;
        internal const int MSG_TRUNC = 0x20;
        internal const int MSG_DONTWAIT = 0x40;
        internal const int MSG_WAITALL = 0x100;
        internal const int MSG_NOSIGNAL = 0x4000;
        internal const int SOCK_NONBLOCK = 0x800;
        internal const int SOCK_CLOEXEC = 0x80000;

        /// <summary>The largest socket address (<c>sizeof(struct sockaddr_storage)</c>).</summary>
        internal const int SockaddrStorageSize = 128;

        /// <summary><c>struct iovec</c>.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct IoVec
        {
            public byte* Base;
            public nuint Length;
        }

        /// <summary><c>struct msghdr</c> (64-bit layout).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct MessageHeader
        {
            public byte* Name;
            public uint NameLength;
            public IoVec* IoVecs;
            public nuint IoVecCount;
            public byte* Control;
            public nuint ControlLength;
            public int Flags;
        }

        // Sockets are passed as SafeHandles: the marshaller holds a reference for the call, so a concurrent Dispose
        // cannot close the descriptor (and let another socket reuse its number) while the kernel uses it.
        // SAFETY: the kernel writes up to length bytes at buffer; the caller keeps them pinned for the call.
        [LibraryImport(Libraries.Libc, EntryPoint = "recv", SetLastError = true)]
        internal static partial nint Receive(SafeSocketHandle socket, byte* buffer, nuint length, int flags);

        // SAFETY: the kernel reads length bytes at buffer; the caller keeps them pinned for the call.
        [LibraryImport(Libraries.Libc, EntryPoint = "send", SetLastError = true)]
        internal static partial nint Send(SafeSocketHandle socket, byte* buffer, nuint length, int flags);

        // SAFETY: the msghdr and every buffer, iovec, address and control block it points to stay pinned for the call.
        [LibraryImport(Libraries.Libc, EntryPoint = "recvmsg", SetLastError = true)]
        internal static partial nint ReceiveMessage(SafeSocketHandle socket, MessageHeader* message, int flags);

        // SAFETY: as for recvmsg; the kernel only reads them.
        [LibraryImport(Libraries.Libc, EntryPoint = "sendmsg", SetLastError = true)]
        internal static partial nint SendMessage(SafeSocketHandle socket, MessageHeader* message, int flags);

        // SAFETY: address and addressLength are both null, or *addressLength is the size of the buffer at address.
        [LibraryImport(Libraries.Libc, EntryPoint = "accept4", SetLastError = true)]
        internal static partial int Accept(SafeSocketHandle socket, byte* address, uint* addressLength, int flags);

        // SAFETY: the kernel reads addressLength bytes at address, which the caller keeps alive for the call.
        [LibraryImport(Libraries.Libc, EntryPoint = "connect", SetLastError = true)]
        internal static partial int Connect(SafeSocketHandle socket, byte* address, uint addressLength);
    }
}
