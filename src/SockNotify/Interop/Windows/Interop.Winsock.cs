using System.Net.Sockets;
using System.Runtime.InteropServices;
using static SockNotify.Interop.Kernel32;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>
    /// The Winsock calls of the Windows engine's overlapped operations, and the extension functions (AcceptEx,
    /// ConnectEx) looked up once per process. Sockets are passed as SafeHandles, so a concurrent Dispose cannot close
    /// a socket (and let its handle value be reused) while a call uses it.
    /// </summary>
    internal static unsafe partial class Winsock
    {
        internal const int SOCKET_ERROR = -1;
        internal const int WSA_IO_PENDING = 997;
        internal const int WSAEWOULDBLOCK = 10035;
        internal const int WSAEINVAL = 10022;
        internal const int SOL_SOCKET = 0xFFFF;
        internal const int SO_UPDATE_ACCEPT_CONTEXT = 0x700B;
        internal const int SO_UPDATE_CONNECT_CONTEXT = 0x7010;
        internal const int SOCK_STREAM = 1;
        internal const int IPPROTO_TCP = 6;
        internal const uint WSA_FLAG_OVERLAPPED = 0x01;
        internal const uint WSA_FLAG_NO_HANDLE_INHERIT = 0x80;
        internal const ushort AF_INET = 2;
        internal const ushort AF_INET6 = 23;

        /// <summary>What AcceptEx needs per address: the largest address plus the 16 bytes it documents.</summary>
        internal const int AcceptAddressLength = Socket.SockaddrStorageSize + 16;

        /// <summary><c>WSABUF</c> (x64: 16 bytes).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct WsaBuffer
        {
            public uint Length;
            public byte* Pointer;
        }

        // SAFETY (WSARecv, WSASend, WSARecvFrom, WSASendTo): buffers, the counts, flags, the address and the OVERLAPPED
        // stay valid and pinned until the operation's completion packet is dequeued, which the engine guarantees.
        [LibraryImport(Libraries.Ws2_32, SetLastError = true)]
        internal static partial int WSARecv(SafeSocketHandle socket, WsaBuffer* buffers, uint count, uint* received, uint* flags, NativeOverlapped* overlapped, nint completionRoutine);

        [LibraryImport(Libraries.Ws2_32, SetLastError = true)]
        internal static partial int WSASend(SafeSocketHandle socket, WsaBuffer* buffers, uint count, uint* sent, uint flags, NativeOverlapped* overlapped, nint completionRoutine);

        [LibraryImport(Libraries.Ws2_32, SetLastError = true)]
        internal static partial int WSARecvFrom(
            SafeSocketHandle socket, WsaBuffer* buffers, uint count, uint* received, uint* flags, byte* from, int* fromLength,
            NativeOverlapped* overlapped, nint completionRoutine);

        [LibraryImport(Libraries.Ws2_32, SetLastError = true)]
        internal static partial int WSASendTo(
            SafeSocketHandle socket, WsaBuffer* buffers, uint count, uint* sent, uint flags, byte* to, int toLength,
            NativeOverlapped* overlapped, nint completionRoutine);

        // SAFETY: the OVERLAPPED is one the engine passed to an operation on this socket; wait false never blocks.
        [LibraryImport(Libraries.Ws2_32, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static partial bool WSAGetOverlappedResult(
            SafeSocketHandle socket, NativeOverlapped* overlapped, uint* transferred, [MarshalAs(UnmanagedType.Bool)] bool wait, uint* flags);

        // SAFETY: the kernel reads at most length bytes at buffer, which the caller keeps for the call.
        [LibraryImport(Libraries.Ws2_32, EntryPoint = "recv", SetLastError = true)]
        internal static partial int Receive(SafeSocketHandle socket, byte* buffer, int length, int flags);

        [LibraryImport(Libraries.Ws2_32, EntryPoint = "bind", SetLastError = true)]
        internal static partial int Bind(SafeSocketHandle socket, byte* address, int length);

        [LibraryImport(Libraries.Ws2_32, EntryPoint = "getsockname", SetLastError = true)]
        internal static partial int GetSocketName(SafeSocketHandle socket, byte* address, int* length);

        [LibraryImport(Libraries.Ws2_32, EntryPoint = "setsockopt", SetLastError = true)]
        internal static partial int SetSocketOption(nint socket, int level, int name, void* value, int length);

        /// <summary>A new overlapped, non-inheritable socket (AcceptEx's accept socket); -1 (INVALID_SOCKET) on failure.</summary>
        [LibraryImport(Libraries.Ws2_32, EntryPoint = "WSASocketW", SetLastError = true)]
        internal static partial nint WSASocket(int family, int type, int protocol, nint protocolInfo, uint group, uint flags);

        // SAFETY: only a socket this process owns and no SafeHandle wraps, once.
        [LibraryImport(Libraries.Ws2_32, EntryPoint = "closesocket", SetLastError = true)]
        internal static partial int CloseSocket(nint socket);

        [LibraryImport(Libraries.Ws2_32, SetLastError = true)]
        internal static partial int WSAIoctl(
            SafeSocketHandle socket, uint code, void* input, uint inputLength, void* output, uint outputLength, uint* returned,
            NativeOverlapped* overlapped, nint completionRoutine);

        // SAFETY: the OVERLAPPED is the operation's own, on this socket; cancelling one the kernel finished is a no-op.
        [LibraryImport(Libraries.Kernel32, SetLastError = true)]
        [return: MarshalAs(UnmanagedType.Bool)]
        internal static partial bool CancelIoEx(SafeSocketHandle handle, NativeOverlapped* overlapped);
    }
}
