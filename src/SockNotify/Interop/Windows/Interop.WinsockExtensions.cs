using System.Net.Sockets;
using System.Runtime.InteropServices;
using static SockNotify.Interop.Kernel32;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>
    /// Winsock's extension functions, which have no export: <c>WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER)</c> hands
    /// out their addresses. They are the same for every socket of the Microsoft TCP/IP provider (the only one .NET's
    /// sockets use), so they are looked up once, with the first socket that needs them.
    /// </summary>
    internal static unsafe partial class WinsockExtensions
    {
        private const uint SIO_GET_EXTENSION_FUNCTION_POINTER = 0xC8000006;
        private static readonly Guid s_acceptEx = new("b5367df1-cbac-11cf-95ca-00805f48a192");
        private static readonly Guid s_connectEx = new("25a207b9-ddf3-4660-8ee9-76e58c74063e");

        private static delegate* unmanaged<nint, nint, void*, uint, uint, uint, uint*, NativeOverlapped*, int> s_acceptExFunction;
        private static delegate* unmanaged<nint, byte*, int, void*, uint, uint*, NativeOverlapped*, int> s_connectExFunction;

        /// <summary>AcceptEx with no receive: 0 (done or pending: a packet will come) or the Winsock error.</summary>
        internal static int AcceptEx(SafeSocketHandle listener, nint acceptSocket, void* addresses, NativeOverlapped* overlapped)
        {
            var function = s_acceptExFunction;
            if (function == null)
            {
                function = (delegate* unmanaged<nint, nint, void*, uint, uint, uint, uint*, NativeOverlapped*, int>)Lookup(listener, s_acceptEx);
                s_acceptExFunction = function;
            }

            bool added = false;
            try
            {
                listener.DangerousAddRef(ref added);
                uint received;
                // SAFETY: the listener is referenced for the call; addresses and the OVERLAPPED live until the packet.
                int result = function(listener.DangerousGetHandle(), acceptSocket, addresses, 0,
                    Winsock.AcceptAddressLength, Winsock.AcceptAddressLength, &received, overlapped);
                return result != 0 ? Win32Error.ERROR_SUCCESS : Marshal.GetLastSystemError();
            }
            finally
            {
                if (added)
                {
                    listener.DangerousRelease();
                }
            }
        }

        /// <summary>ConnectEx with no data: 0 (done or pending: a packet will come) or the Winsock error.</summary>
        internal static int ConnectEx(SafeSocketHandle socket, byte* address, int length, NativeOverlapped* overlapped)
        {
            var function = s_connectExFunction;
            if (function == null)
            {
                function = (delegate* unmanaged<nint, byte*, int, void*, uint, uint*, NativeOverlapped*, int>)Lookup(socket, s_connectEx);
                s_connectExFunction = function;
            }

            bool added = false;
            try
            {
                socket.DangerousAddRef(ref added);
                // SAFETY: the socket is referenced for the call; the address and OVERLAPPED live until the packet.
                int result = function(socket.DangerousGetHandle(), address, length, null, 0, null, overlapped);
                return result != 0 ? Win32Error.ERROR_SUCCESS : Marshal.GetLastSystemError();
            }
            finally
            {
                if (added)
                {
                    socket.DangerousRelease();
                }
            }
        }

        private static nint Lookup(SafeSocketHandle socket, Guid function)
        {
            nint address;
            uint returned;
            // SAFETY: both buffers are locals that outlive the synchronous call (no OVERLAPPED).
            if (Winsock.WSAIoctl(socket, SIO_GET_EXTENSION_FUNCTION_POINTER, &function, (uint)sizeof(Guid), &address, (uint)sizeof(nint), &returned, null, 0) != 0)
            {
                throw new SocketException(Marshal.GetLastPInvokeError());
            }

            return address;
        }
    }
}
