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
        // The data and accept calls are retried when a signal interrupts them (EINTR), as .NET's own are: on a
        // non-blocking socket the kernel reports no partial progress with it, and the readiness edge that led here will
        // not repeat. connect is not: an interrupted connect goes on in the background, like EINPROGRESS.

        // SAFETY: the kernel writes up to length bytes at buffer; the caller keeps them pinned for the call.
        internal static nint Receive(SafeSocketHandle socket, byte* buffer, nuint length, int flags)
        {
            nint result;
            do
            {
                Fault fault = Faults.Ask(Faults.Call.Receive, socket);
                result = fault.Fails ? fault.Fail() : ReceiveCore(socket, buffer, fault.Limited(length), flags);
            }
            while (Interrupted(result));

            return result;
        }

        // SAFETY: the kernel reads length bytes at buffer; the caller keeps them pinned for the call.
        internal static nint Send(SafeSocketHandle socket, byte* buffer, nuint length, int flags)
        {
            nint result;
            do
            {
                Fault fault = Faults.Ask(Faults.Call.Send, socket);
                result = fault.Fails ? fault.Fail() : SendCore(socket, buffer, fault.Limited(length), flags);
            }
            while (Interrupted(result));

            return result;
        }

        // SAFETY: the msghdr and every buffer, iovec, address and control block it points to stay pinned for the call.
        internal static nint ReceiveMessage(SafeSocketHandle socket, MessageHeader* message, int flags)
        {
            nint result;
            do
            {
                Fault fault = Faults.Ask(Faults.Call.Receive, socket);
                result = fault.Fails ? fault.Fail() : ReceiveMessageCore(socket, message, flags);
            }
            while (Interrupted(result));

            return result;
        }

        // SAFETY: as for recvmsg; the kernel only reads them.
        internal static nint SendMessage(SafeSocketHandle socket, MessageHeader* message, int flags)
        {
            nint result;
            do
            {
                Fault fault = Faults.Ask(Faults.Call.Send, socket);
                result = fault.Fails ? fault.Fail() : SendMessageCore(socket, message, flags);
            }
            while (Interrupted(result));

            return result;
        }

        // SAFETY: address and addressLength are both null, or *addressLength is the size of the buffer at address.
        internal static int Accept(SafeSocketHandle socket, byte* address, uint* addressLength, int flags)
        {
            int result;
            do
            {
                Fault fault = Faults.Ask(Faults.Call.Accept, socket);
                result = fault.Fails ? fault.Fail() : AcceptCore(socket, address, addressLength, flags);
            }
            while (Interrupted(result));

            return result;
        }

        /// <summary>
        /// Wraps a descriptor accept4 or io_uring returned into the caller's <see cref="System.Net.Sockets.Socket"/>,
        /// which then owns it. If .NET refuses it (its queries of the descriptor failed), the error is returned instead;
        /// on any failure the descriptor is closed here, exactly once, through its handle.
        /// </summary>
        internal static SocketError WrapAccepted(int fd, out System.Net.Sockets.Socket? accepted)
        {
            accepted = null;
            SafeSocketHandle handle = new(fd, ownsHandle: true);
            try
            {
                Fault fault = Faults.Ask(Faults.Call.WrapAccepted, fd);
                if (fault.Fails)
                {
                    throw new SocketException((int)ToSocketError(fault.Errno));
                }

                accepted = new System.Net.Sockets.Socket(handle) { Blocking = false };
                return SocketError.Success;
            }
            catch (Exception e)
            {
                // A Socket made before the failure owns the handle too; disposing both closes the descriptor once.
                accepted?.Dispose();
                accepted = null;
                handle.Dispose();
                if (e is SocketException socketError)
                {
                    return socketError.SocketErrorCode;
                }

                throw;
            }
        }

        private static bool Interrupted(nint result) => result < 0 && Marshal.GetLastPInvokeError() == (int)Errno.EINTR;

        [LibraryImport(Libraries.Libc, EntryPoint = "recv", SetLastError = true)]
        private static partial nint ReceiveCore(SafeSocketHandle socket, byte* buffer, nuint length, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "send", SetLastError = true)]
        private static partial nint SendCore(SafeSocketHandle socket, byte* buffer, nuint length, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "recvmsg", SetLastError = true)]
        private static partial nint ReceiveMessageCore(SafeSocketHandle socket, MessageHeader* message, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "sendmsg", SetLastError = true)]
        private static partial nint SendMessageCore(SafeSocketHandle socket, MessageHeader* message, int flags);

        [LibraryImport(Libraries.Libc, EntryPoint = "accept4", SetLastError = true)]
        private static partial int AcceptCore(SafeSocketHandle socket, byte* address, uint* addressLength, int flags);

        // SAFETY: the kernel reads addressLength bytes at address, which the caller keeps alive for the call.
        [LibraryImport(Libraries.Libc, EntryPoint = "connect", SetLastError = true)]
        internal static partial int Connect(SafeSocketHandle socket, byte* address, uint addressLength);
    }
}
