using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

public class AcceptConnectTests
{
    [Theory, BothBackends]
    public void Pre_posted_accepts_each_complete_with_one_connection(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        for (int i = 0; i < 4; i++)
        {
            Expect.Started(port.Accept(listener, i));
        }

        List<Socket> clients = [];
        for (int i = 0; i < 4; i++)
        {
            Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            client.Connect(listener.LocalEndPoint!);
            clients.Add(client);
        }

        List<CompletionEntry> entries = Expect.Completions(port, 4);
        try
        {
            Assert.All(entries, e =>
            {
                Assert.Equal("listener", e.CompletionKey);
                Assert.Equal(SocketError.Success, e.SocketError);
                Assert.NotNull(e.AcceptSocket);
                Assert.False(e.AcceptSocket!.Blocking);
                Assert.Equal(listener.LocalEndPoint, e.AcceptSocket.LocalEndPoint);
            });
            Assert.Equal([0, 1, 2, 3], entries.Select(e => (int)e.Context!).Order());
            Assert.Equal(
                clients.Select(c => c.LocalEndPoint!.ToString()).Order(),
                entries.Select(e => e.AcceptSocket!.RemoteEndPoint!.ToString()).Order());
        }
        finally
        {
            entries.ForEach(e => e.AcceptSocket?.Dispose());
            clients.ForEach(c => c.Dispose());
        }
    }

    [Theory, BothBackends]
    public void Connections_that_arrive_between_accepts_wait_for_later_accepts(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        Expect.Started(port.Accept(listener, "first"));
        Socket[] clients = [.. Enumerable.Range(0, 5).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))];
        List<CompletionEntry> entries = [];
        try
        {
            Array.ForEach(clients, c => c.Connect(listener.LocalEndPoint!));
            entries.Add(Expect.Completion(port));
            Expect.Nothing(port, 50);
            for (int i = 0; i < 4; i++)
            {
                Expect.Started(port.Accept(listener, "later"));
            }

            entries.AddRange(Expect.Completions(port, 4));

            Assert.All(entries, e => Assert.NotNull(e.AcceptSocket));
            Assert.Equal(
                clients.Select(c => c.LocalEndPoint!.ToString()).Order(),
                entries.Select(e => e.AcceptSocket!.RemoteEndPoint!.ToString()).Order());
        }
        finally
        {
            entries.ForEach(e => e.AcceptSocket?.Dispose());
            Array.ForEach(clients, c => c.Dispose());
        }
    }

    [Theory, BothBackends]
    public void Disposing_a_listener_aborts_its_pending_accepts(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        Expect.Started(port.Accept(listener, 1));
        Expect.Started(port.Accept(listener, 2));

        listener.Dispose();
        List<CompletionEntry> entries = Expect.Completions(port, 2);

        Assert.All(entries, e => Assert.Equal(SocketError.OperationAborted, e.SocketError));
        Assert.True(SpinWait.SpinUntil(() => port.RegistrationCount == 0, 1000));
        Assert.Equal(0, port.OperationsInUse);
    }

    [Theory, BothBackends]
    public void An_accepted_socket_can_be_associated_and_echo(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener(AddressFamily.InterNetworkV6);
        port.Associate(listener, "listener");
        Expect.Started(port.Accept(listener, null));
        using Socket client = new(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        using Socket accepted = Expect.Completion(port).AcceptSocket!;
        port.Associate(accepted, "connection");
        byte[] buffer = new byte[8];

        Expect.Started(port.Receive(accepted, buffer, SocketFlags.None, "receive"));
        client.Send("ping"u8);
        Assert.Equal(4u, Expect.Completion(port).BytesTransferred);
        Expect.Started(port.Send(accepted, buffer.AsMemory(0, 4), SocketFlags.None, "send"));

        Assert.Equal("connection", Expect.Completion(port).CompletionKey);
        Assert.Equal("ping"u8.ToArray(), TcpPair.ReadExactly(client, 4));
    }

    [Theory, BothBackends]
    public void Connect_completes_and_the_socket_is_connected(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        using Socket socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        port.Associate(socket, "client");

        Expect.Started(port.Connect(socket, listener.LocalEndPoint!, "connect"));
        CompletionEntry entry = Expect.Completion(port);

        Assert.Equal("connect", entry.Context);
        Assert.Equal(SocketError.Success, entry.SocketError);
        listener.Blocking = true;
        using Socket accepted = listener.Accept();
        socket.Send("connected"u8);
        Assert.Equal("connected"u8.ToArray(), TcpPair.ReadExactly(accepted, 9));
    }

    [Theory, BothBackends]
    public void A_dual_mode_socket_connects_to_an_IPv4_endpoint(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        using Socket socket = new(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
        port.Associate(socket, "client");

        Expect.Started(port.Connect(socket, listener.LocalEndPoint!, null));

        Assert.Equal(SocketError.Success, Expect.Completion(port).SocketError);
    }

    [Theory, BothBackends]
    public void Connect_to_a_closed_port_completes_with_ConnectionRefused(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        IPEndPoint closed;
        using (Socket probe = Loopback.Listener())
        {
            closed = (IPEndPoint)probe.LocalEndPoint!;
        }

        using Socket socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        port.Associate(socket, "client");
        Expect.Started(port.Connect(socket, closed, null));

        Assert.Equal(SocketError.ConnectionRefused, Expect.Completion(port).SocketError);
    }

    [Theory, BothBackends]
    public void Datagrams_carry_their_addresses_both_ways(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket server = new(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        server.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        using Socket client = new(AddressFamily.InterNetworkV6, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        port.Associate(server, "server");
        byte[] buffer = new byte[64];
        SocketAddress from = new(AddressFamily.InterNetworkV6);

        Expect.Started(port.ReceiveFrom(server, buffer, SocketFlags.None, from, "receive"));
        client.SendTo("datagram"u8, server.LocalEndPoint!);
        CompletionEntry received = Expect.Completion(port);
        Assert.Equal(8u, received.BytesTransferred);
        Assert.Equal(client.LocalEndPoint, new IPEndPoint(IPAddress.IPv6Any, 0).Create(from));

        Expect.Started(port.SendTo(server, buffer.AsMemory(0, 8), SocketFlags.None, from, "reply"));
        Assert.Equal(8u, Expect.Completion(port).BytesTransferred);
        byte[] reply = new byte[64];
        EndPoint sender = new IPEndPoint(IPAddress.IPv6Any, 0);
        client.ReceiveTimeout = Expect.DeadlineMilliseconds;
        int length = client.ReceiveFrom(reply, ref sender);
        Assert.Equal("datagram"u8.ToArray(), reply[..length]);
        Assert.Equal(server.LocalEndPoint, sender);
    }

    [Theory, BothBackends]
    public void Connect_on_a_connected_socket_completes_with_IsConnected(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket first = Loopback.Listener();
        using Socket second = Loopback.Listener();
        using Socket socket = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        port.Associate(socket, "client");
        Expect.Started(port.Connect(socket, first.LocalEndPoint!, "first"));
        Assert.Equal(SocketError.Success, Expect.Completion(port).SocketError);

        Expect.Started(port.Connect(socket, second.LocalEndPoint!, "again")); // Toward another listener, even.

        CompletionEntry again = Expect.Completion(port);
        Assert.Equal(("again", SocketError.IsConnected), (again.Context, again.SocketError));
    }

    [Theory, BothBackends]
    public void A_datagram_longer_than_the_buffer_completes_with_MessageSize_and_its_start(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket server = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        server.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        port.Associate(server, "server");
        byte[] buffer = new byte[4];
        SocketAddress from = new(AddressFamily.InterNetwork);

        Expect.Started(port.ReceiveFrom(server, buffer, SocketFlags.None, from, "receive"));
        client.SendTo("datagram"u8, server.LocalEndPoint!);

        CompletionEntry received = Expect.Completion(port);
        Assert.Equal(SocketError.MessageSize, received.SocketError);
        Assert.Equal(4u, received.BytesTransferred);
        Assert.Equal("data"u8.ToArray(), buffer);
        Assert.Equal(client.LocalEndPoint, new IPEndPoint(IPAddress.Any, 0).Create(from));
    }
}
