using System.Net;
using System.Net.Sockets;

namespace SockNotify.Tests.Support;

/// <summary>Loopback addresses and listeners for tests.</summary>
internal static class Loopback
{
    public static IPAddress Address(AddressFamily family) =>
        family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Loopback : IPAddress.Loopback;

    /// <summary>A listener bound to an ephemeral loopback port, not yet registered anywhere.</summary>
    public static Socket Listener(AddressFamily family = AddressFamily.InterNetwork)
    {
        Socket listener = new(family, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(Address(family), 0));
        listener.Listen();
        listener.Blocking = false;
        return listener;
    }
}
