using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>The socket calls the epoll backend performs on readiness, and the structures io_uring shares with them.</summary>
    internal static unsafe partial class Socket
    {
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
        [LibraryImport(Libraries.Libc, EntryPoint = "recv", SetLastError = true)]
        internal static partial nint Receive(SafeSocketHandle socket, byte* buffer, nuint length, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "send", SetLastError = true)]
        internal static partial nint Send(SafeSocketHandle socket, byte* buffer, nuint length, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "recvmsg", SetLastError = true)]
        internal static partial nint ReceiveMessage(SafeSocketHandle socket, MessageHeader* message, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "sendmsg", SetLastError = true)]
        internal static partial nint SendMessage(SafeSocketHandle socket, MessageHeader* message, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "accept4", SetLastError = true)]
        internal static partial int Accept(SafeSocketHandle socket, byte* address, uint* addressLength, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "connect", SetLastError = true)]
        internal static partial int Connect(SafeSocketHandle socket, byte* address, uint addressLength);
    }

    /// <summary>Maps a Linux errno to the <see cref="SocketError"/> .NET reports for it.</summary>
    internal static SocketError ToSocketError(Errno errno) => (int)errno switch
    {
        0 => SocketError.Success,
        4 => SocketError.Interrupted,
        9 => SocketError.OperationAborted, // EBADF: the socket was closed under the operation
        11 => SocketError.WouldBlock,
        12 or 105 => SocketError.NoBufferSpaceAvailable, // ENOMEM, ENOBUFS
        13 or 1 => SocketError.AccessDenied,
        22 => SocketError.InvalidArgument,
        23 or 24 => SocketError.TooManyOpenSockets,
        32 or 108 => SocketError.Shutdown, // EPIPE, ESHUTDOWN
        88 => SocketError.NotSocket,
        89 => SocketError.DestinationAddressRequired,
        90 => SocketError.MessageSize,
        93 => SocketError.ProtocolNotSupported,
        95 => SocketError.OperationNotSupported,
        97 => SocketError.AddressFamilyNotSupported,
        98 => SocketError.AddressAlreadyInUse,
        99 => SocketError.AddressNotAvailable,
        100 => SocketError.NetworkDown,
        101 => SocketError.NetworkUnreachable,
        102 => SocketError.NetworkReset,
        103 => SocketError.ConnectionAborted,
        104 => SocketError.ConnectionReset,
        106 => SocketError.IsConnected,
        107 => SocketError.NotConnected,
        110 => SocketError.TimedOut,
        111 => SocketError.ConnectionRefused,
        112 => SocketError.HostDown,
        113 => SocketError.HostUnreachable,
        114 => SocketError.AlreadyInProgress,
        115 => SocketError.InProgress,
        125 => SocketError.OperationAborted, // ECANCELED
        _ => SocketError.SocketError,
    };
}
