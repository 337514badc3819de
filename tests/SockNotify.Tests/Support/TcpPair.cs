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

    /// <summary>Reads exactly <paramref name="length"/> bytes, failing if the peer closes first or they do not come in time.</summary>
    public static byte[] ReadExactly(Socket socket, int length)
    {
        byte[] buffer = new byte[length];
        socket.ReceiveTimeout = Expect.DeadlineMilliseconds;
        int total = 0;
        while (total < length)
        {
            int read = socket.Receive(buffer, total, length - total, SocketFlags.None);
            Assert.True(read > 0, "The peer closed early.");
            total += read;
        }

        return buffer;
    }

    /// <summary><see cref="ReadExactly"/> on a thread of its own: blocked pool threads of parallel tests cannot delay it.</summary>
    public static Task<byte[]> ReadOnOwnThread(Socket socket, int length) =>
        Task.Factory.StartNew(() => ReadExactly(socket, length), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    public void Dispose()
    {
        Server.Dispose();
        Client.Dispose();
    }
}
