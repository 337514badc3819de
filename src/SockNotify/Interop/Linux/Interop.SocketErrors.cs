using System.Net.Sockets;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>Maps a Linux errno to the <see cref="SocketError"/> .NET reports for it; 0 is Success.</summary>
    /// <remarks>
    /// Any other errno is <see cref="SocketError.SocketError"/>. Unlike dotnet/runtime's SocketErrorPal, this table
    /// does not map EFAULT, ENOENT, ENODATA, ENOPROTOOPT, EPROTOTYPE, ESOCKTNOSUPPORT, EPFNOSUPPORT or ENXIO, and it
    /// reports ESHUTDOWN as Shutdown rather than Disconnecting. No errno yields the resolver or Winsock-only errors
    /// (HostNotFound, TryAgain, NoRecovery, NoData, IOPending, ProcessLimit, SystemNotReady, VersionNotSupported,
    /// NotInitialized, TypeNotFound).
    /// </remarks>
    internal static SocketError ToSocketError(Errno errno) => errno switch
    {
        0 => SocketError.Success,
        Errno.EPERM or Errno.EACCES => SocketError.AccessDenied,
        Errno.EINTR => SocketError.Interrupted,
        Errno.EBADF => SocketError.OperationAborted, // the socket was closed under the operation
        Errno.EAGAIN => SocketError.WouldBlock,
        Errno.ENOMEM or Errno.ENOBUFS => SocketError.NoBufferSpaceAvailable,
        Errno.EINVAL => SocketError.InvalidArgument,
        Errno.ENFILE or Errno.EMFILE => SocketError.TooManyOpenSockets,
        Errno.EPIPE or Errno.ESHUTDOWN => SocketError.Shutdown,
        Errno.ENOTSOCK => SocketError.NotSocket,
        Errno.EDESTADDRREQ => SocketError.DestinationAddressRequired,
        Errno.EMSGSIZE => SocketError.MessageSize,
        Errno.EPROTONOSUPPORT => SocketError.ProtocolNotSupported,
        Errno.EOPNOTSUPP => SocketError.OperationNotSupported,
        Errno.EAFNOSUPPORT => SocketError.AddressFamilyNotSupported,
        Errno.EADDRINUSE => SocketError.AddressAlreadyInUse,
        Errno.EADDRNOTAVAIL => SocketError.AddressNotAvailable,
        Errno.ENETDOWN => SocketError.NetworkDown,
        Errno.ENETUNREACH => SocketError.NetworkUnreachable,
        Errno.ENETRESET => SocketError.NetworkReset,
        Errno.ECONNABORTED => SocketError.ConnectionAborted,
        Errno.ECONNRESET => SocketError.ConnectionReset,
        Errno.EISCONN => SocketError.IsConnected,
        Errno.ENOTCONN => SocketError.NotConnected,
        Errno.ETIMEDOUT => SocketError.TimedOut,
        Errno.ECONNREFUSED => SocketError.ConnectionRefused,
        Errno.EHOSTDOWN => SocketError.HostDown,
        Errno.EHOSTUNREACH => SocketError.HostUnreachable,
        Errno.EALREADY => SocketError.AlreadyInProgress,
        Errno.EINPROGRESS => SocketError.InProgress,
        Errno.ECANCELED => SocketError.OperationAborted, // a cancel request ended the operation
        _ => SocketError.SocketError,
    };
}
