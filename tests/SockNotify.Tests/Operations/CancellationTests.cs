using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

public class CancellationTests
{
    [Theory, BothBackends]
    public void CancelIo_completes_a_pending_receive_with_OperationAborted_once(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));

        Assert.True(port.CancelIo(pair.Server));
        CompletionEntry entry = Expect.Completion(port);

        Assert.Equal("receive", entry.Context);
        Assert.Equal(SocketError.OperationAborted, entry.SocketError);
        Assert.False(port.CancelIo(pair.Server)); // Nothing left to cancel.
        Expect.Nothing(port);
        Assert.Equal(0, port.OperationsInUse);
    }

    [Theory, BothBackends]
    public void CancelIo_with_a_context_cancels_only_that_operation(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        object keep = new();
        object cancel = new();
        Expect.Started(port.Accept(listener, keep));
        Expect.Started(port.Accept(listener, cancel));

        Assert.True(port.CancelIo(listener, cancel));
        CompletionEntry cancelled = Expect.Completion(port);
        Assert.Same(cancel, cancelled.Context);
        Assert.Equal(SocketError.OperationAborted, cancelled.SocketError);

        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        CompletionEntry accepted = Expect.Completion(port);
        using Socket connection = accepted.AcceptSocket!;
        Assert.Same(keep, accepted.Context);
    }

    [Theory, BothBackends]
    public void Disposing_the_socket_completes_its_operations_with_OperationAborted(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, "pooled"));

        pair.Server.Dispose();
        List<CompletionEntry> entries = Expect.Completions(port, 2);

        Assert.All(entries, e => Assert.Equal(SocketError.OperationAborted, e.SocketError));
        Assert.Equal(["pooled", "receive"], entries.Select(e => (string)e.Context!).Order());
        Assert.Equal(SocketError.OperationAborted, port.Receive(pair.Server, new byte[1], SocketFlags.None, null));
        Expect.Nothing(port);
        Assert.Equal(0, port.OperationsInUse);
        Assert.Equal(0, port.RegistrationCount);
        pair.Dispose();
    }

    [Theory, BothBackends]
    public void A_disposed_socket_closes_normally_for_its_peer(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Send(pair.Server, "last words"u8.ToArray(), SocketFlags.None, "send"));
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));
        // A send is done once its completion comes; one still waiting to be submitted when the socket is disposed ends
        // aborted, as every operation of a disposed socket may.
        List<CompletionEntry> entries = [Expect.Completion(port)];

        pair.Server.Dispose();
        entries.Add(Expect.Completion(port));

        Assert.Equal("last words"u8.ToArray(), TcpPair.ReadExactly(pair.Client, 10));
        Assert.Equal(0, pair.Client.Receive(new byte[1])); // A FIN, not a reset.
        Assert.Contains(entries, e => (string)e.Context! == "send" && e.SocketError == SocketError.Success);
        Assert.Contains(entries, e => (string)e.Context! == "receive" && e.SocketError == SocketError.OperationAborted);
    }

    [Theory, BothBackends]
    public void Cancel_racing_completion_completes_each_operation_exactly_once(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[] buffer = new byte[1];
        int aborted = 0;
        int received = 0;
        for (int i = 0; i < 1000; i++)
        {
            Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, i));
            pair.Client.Send([(byte)i]);
            port.CancelIo(pair.Server);
            CompletionEntry entry = Expect.Completion(port);
            Assert.Equal(i, (int)entry.Context!);
            if (entry.SocketError == SocketError.OperationAborted)
            {
                aborted++;
                Assert.Equal(0u, entry.BytesTransferred);
            }
            else
            {
                Assert.Equal(SocketError.Success, entry.SocketError);
                received++;
            }

            TcpPair.Drain(pair.Server); // What a cancelled receive left behind.
        }

        Expect.Nothing(port, 50);
        Assert.Equal(1000, aborted + received);
        Assert.Equal(0, port.OperationsInUse);
    }

    [Theory, BothBackends]
    public void Closing_1000_sockets_with_operations_in_flight_completes_every_operation_once(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        listener.Blocking = true;
        Dictionary<int, int> completions = [];
        const int rounds = 10;
        const int perRound = 100; // Disposal is noticed by the port's periodic sweep, so rounds close many at once.
        for (int round = 0; round < rounds; round++)
        {
            List<Socket> clients = [];
            List<Socket> servers = [];
            for (int i = round * perRound; i < (round + 1) * perRound; i++)
            {
                Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                client.Connect(listener.LocalEndPoint!);
                Socket server = listener.Accept();
                port.Associate(server, i);
                Expect.Started(port.Receive(server, new byte[8], SocketFlags.None, "receive"));
                Expect.Started(port.Send(server, new byte[8], SocketFlags.None, "send"));
                if (i % 2 == 0)
                {
                    client.Send([1]); // Half race a completion against the close.
                }

                clients.Add(client);
                servers.Add(server);
            }

            servers.ForEach(s => s.Dispose());
            foreach (CompletionEntry entry in Expect.Completions(port, 2 * perRound))
            {
                int key = (int)entry.CompletionKey!;
                completions[key] = completions.GetValueOrDefault(key) + 1;
            }

            clients.ForEach(c => c.Dispose());
        }

        Expect.Nothing(port, 100);
        Assert.Equal(rounds * perRound, completions.Count);
        Assert.All(completions.Values, count => Assert.Equal(2, count));
        Assert.Equal(0, port.OperationsInUse);
        Assert.Equal(0, port.RegistrationCount);
    }

    [Theory, BothBackends]
    public void Disposing_the_port_with_operations_in_flight_releases_them(CompletionPortBackend backend)
    {
        CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, null));
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, null));
        Expect.Started(port.Accept(listener, null));

        port.Dispose();

        Assert.Equal(0, port.OperationsInUse);
        Assert.Throws<ObjectDisposedException>(() => port.Receive(pair.Server, new byte[1], SocketFlags.None, null));
        using CompletionPort next = Ports.Create(backend);
        next.Associate(pair.Server, "again"); // The socket is free for another port.
    }
}
