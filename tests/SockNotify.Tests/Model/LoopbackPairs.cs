using System.Net;
using System.Net.Sockets;

namespace SockNotify.Tests.Model;

/// <summary>
/// Connected loopback pairs made through one listener that lives as long as this object, so that thousands of model
/// sequences do not each bind and close a listener. One instance belongs to one thread at a time: only that thread
/// connects to its listener, so the connection it accepts is the one it just made.
/// </summary>
internal sealed class LoopbackPairs : IDisposable
{
    /// <summary>Large enough that the 64 KiB the operation model lets be in flight always fits in the kernel.</summary>
    public const int BufferBytes = 1 << 20;

    private readonly Socket _listener;
    private Socket? _acceptListener;

    public LoopbackPairs()
    {
        _listener = NewListener();
    }

    /// <summary>A connected pair: the accepted side is non-blocking (the side a port takes), the client side blocking.</summary>
    public (Socket Server, Socket Client) Create()
    {
        Socket client = NewClient();
        client.Connect(_listener.LocalEndPoint!);
        Socket server = _listener.Accept();
        Configure(server);
        server.Blocking = false;
        return (server, client);
    }

    /// <summary>A TCP socket with the buffers and options every model socket has, not yet connected.</summary>
    public static Socket NewClient()
    {
        Socket socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Configure(socket);
        return socket;
    }

    /// <summary>
    /// A second listener, for a port's Accept operations: each sequence associates it with its port, which lets go of
    /// it when disposed. The runner leaves no connection in its backlog.
    /// </summary>
    public Socket AcceptListener => _acceptListener ??= NewListener();

    public void Dispose()
    {
        _listener.Dispose();
        _acceptListener?.Dispose();
    }

    private static Socket NewListener()
    {
        Socket listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Configure(listener); // Accepted sockets inherit the buffer sizes.
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(64);
        return listener;
    }

    private static void Configure(Socket socket)
    {
        socket.NoDelay = true;
        socket.SendBufferSize = BufferBytes;
        socket.ReceiveBufferSize = BufferBytes;
    }
}
