using System.Net;
using System.Net.Sockets;

namespace SockNotify.Tests.Support;

/// <summary>Connected loopback sockets for tests. Every server-side socket is non-blocking, as notification users need.</summary>
internal sealed class TcpPair : IDisposable
{
    private TcpPair(Socket server, Socket client)
    {
        Server = server;
        Client = client;
    }

    /// <summary>The accepted side, the one tests register.</summary>
    public Socket Server { get; }

    /// <summary>The connecting side, the peer the test drives.</summary>
    public Socket Client { get; }

    public static TcpPair Create(AddressFamily family = AddressFamily.InterNetwork)
    {
        using Socket listener = new(family, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(Loopback.Address(family), 0));
        listener.Listen();
        Socket client = new(family, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.Connect(listener.LocalEndPoint!);
        Socket server = listener.Accept();
        server.Blocking = false;
        server.NoDelay = true;
        return new TcpPair(server, client);
    }

    /// <summary>Reads until the socket would block; returns the number of bytes read (0 also at end of stream).</summary>
    public static int Drain(Socket socket)
    {
        Span<byte> buffer = stackalloc byte[4096];
        int total = 0;
        while (true)
        {
            int read = socket.Receive(buffer, SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock || (error == SocketError.Success && read == 0))
            {
                return total;
            }

            Assert.Equal(SocketError.Success, error);
            total += read;
        }
    }

    public void Dispose()
    {
        Server.Dispose();
        Client.Dispose();
    }
}

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
