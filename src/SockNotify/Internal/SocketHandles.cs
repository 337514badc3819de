using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace SockNotify.Internal;

/// <summary>
/// A socket's handle without <see cref="Socket.SafeHandle"/>'s side effect: that getter marks the handle exposed, a
/// write to shared state on every call, and operations look their socket up on every start. Association reads the
/// public getter once, which is what must happen: an exposed handle is never replaced by .NET (as a connect to several
/// addresses may otherwise do), so the association's handle stays the socket's for good.
/// </summary>
internal static class SocketHandles
{
    private static bool s_fieldMissing;

    /// <summary>The socket's handle, read from its field when this runtime has it, else through the public getter.</summary>
    public static SafeSocketHandle Of(Socket socket)
    {
        if (!Volatile.Read(ref s_fieldMissing))
        {
            try
            {
                return HandleField(socket);
            }
            catch (MissingFieldException)
            {
                Volatile.Write(ref s_fieldMissing, true); // A runtime that renamed it: fall back for good.
            }
        }

        return socket.SafeHandle;
    }

    [UnsafeAccessor(UnsafeAccessorKind.Field, Name = "_handle")]
    private static extern ref SafeSocketHandle HandleField(Socket socket);
}
