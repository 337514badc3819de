using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

/// <summary>The port's owning close (Winsock's closesocket) and Dissociate.</summary>
public class CloseSocketTests
{
    [Theory, BothBackends]
    public void CloseSocket_completes_pending_operations_once_aborted_and_the_peer_sees_the_end_at_once(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, "pooled"));

        port.CloseSocket(pair.Server);

        // The end is there when CloseSocket returns, before anyone dequeues, not at the port's next sweep.
        Assert.True(pair.Client.Poll(TimeSpan.FromMilliseconds(5), SelectMode.SelectRead));
        Assert.Equal(0, pair.Client.Receive(new byte[1]));
        List<CompletionEntry> aborted = Expect.Completions(port, 2);
        Assert.Equal(["pooled", "receive"], aborted.Select(e => (string)e.Context!).Order());
        Assert.All(aborted, e => Assert.Equal(SocketError.OperationAborted, e.SocketError));
        Expect.Nothing(port);
        Assert.Equal(0, port.OperationsInUse);
        Assert.Equal(0, port.RegistrationCount);
    }

    [Theory, BothBackends]
    public void A_closed_listener_stops_listening_at_once_and_its_port_can_be_bound_again(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Socket listener = Loopback.Listener();
        IPEndPoint endPoint = (IPEndPoint)listener.LocalEndPoint!;
        port.Associate(listener, "listener");
        Expect.Started(port.Accept(listener, "first"));
        using (Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            client.Connect(endPoint); // Served; on io_uring the listener's multishot accept is in the kernel for it.
            using Socket? accepted = Expect.Completion(port).AcceptSocket;
            Assert.NotNull(accepted);
        }

        Expect.Started(port.Accept(listener, "pending"));
        port.CloseSocket(listener);

        using Socket again = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        again.Bind(endPoint); // Free when CloseSocket returns, before anyone dequeues.
        again.Listen();
        Assert.Equal(SocketError.OperationAborted, Expect.Completion(port).SocketError);
        using Socket late = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        late.Connect(endPoint);
        using Socket reached = again.Accept(); // The new listener, not the closed one, took the connection.
        Expect.Nothing(port);
    }

    [Theory, BothBackends]
    public void CloseSocket_ends_a_notification_registration_silently(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        port.Register(Items.Enable(pair.Server, "key", SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.Persistent));

        port.CloseSocket(pair.Server);

        pair.Client.Send([1]);
        pair.Client.ReceiveTimeout = 1000;
        Assert.Equal(0, pair.Client.Receive(new byte[1]));
        Expect.Nothing(port); // No Remove, no notification.
        Assert.Equal(0, port.RegistrationCount);
    }

    [Theory, BothBackends]
    public void CloseSocket_refuses_a_socket_another_port_holds_and_leaves_it_open(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using CompletionPort other = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(other, "key");

        Assert.Throws<InvalidOperationException>(() => port.CloseSocket(pair.Server));

        Expect.Started(other.Receive(pair.Server, new byte[4], SocketFlags.None, "still"));
        pair.Client.Send([7]);
        Assert.Equal(1u, Expect.Completion(other).BytesTransferred);
    }

    [Theory, BothBackends]
    public void CloseSocket_of_a_socket_no_port_holds_just_closes_it(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();

        port.CloseSocket(pair.Server);

        Assert.True(pair.Server.SafeHandle.IsClosed);
        pair.Client.ReceiveTimeout = 1000;
        Assert.Equal(0, pair.Client.Receive(new byte[1]));
    }

    [Theory, BothBackends]
    public void Dissociate_aborts_operations_and_leaves_the_socket_open_for_another_association(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "first");
        Expect.Started(port.Receive(pair.Server, new byte[4], SocketFlags.None, "old"));

        Assert.True(port.Dissociate(pair.Server));
        Assert.False(port.Dissociate(pair.Server));

        CompletionEntry aborted = Expect.Completion(port);
        Assert.Equal(("old", SocketError.OperationAborted), (aborted.Context, aborted.SocketError));
        port.Associate(pair.Server, "second");
        byte[] buffer = new byte[4];
        Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, "new"));
        pair.Client.Send([9]);
        CompletionEntry received = Expect.Completion(port);
        Assert.Equal(("second", "new", 1u), (received.CompletionKey, received.Context, received.BytesTransferred));
        Assert.Equal(9, buffer[0]);
    }

    [Theory, BothBackends]
    public void A_socket_disposed_with_nothing_pending_closes_at_once(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Socket listener = Loopback.Listener();
        IPEndPoint endPoint = (IPEndPoint)listener.LocalEndPoint!;
        port.Associate(listener, "listener");
        using TcpPair pair = Ports.AssociatedPair(port, "connection");
        Expect.Started(port.Send(pair.Server, new byte[] { 1 }, SocketFlags.None, null));
        Expect.Completion(port);

        listener.Dispose();
        pair.Server.Dispose();

        // Both closed when Dispose returned, not at the port's next sweep (50 ms later): the listener's port is free,
        // and the peer has the end of the stream behind the byte it was sent.
        using Socket again = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        again.Bind(endPoint);
        Assert.True(pair.Client.Poll(TimeSpan.FromMilliseconds(5), SelectMode.SelectRead));
        Assert.Equal(1, pair.Client.Receive(new byte[2]));
        Assert.True(pair.Client.Poll(TimeSpan.FromMilliseconds(5), SelectMode.SelectRead));
        Assert.Equal(0, pair.Client.Receive(new byte[1]));
    }

    [Theory, BothBackends]
    public async Task An_operation_started_while_another_thread_closes_the_socket_is_aborted_never_refused(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        for (int round = 0; round < 100; round++)
        {
            using TcpPair pair = Ports.AssociatedPair(port, round);
            using Barrier start = new(2);
            Task<List<SocketError>> starter = Task.Factory.StartNew(() =>
            {
                List<SocketError> results = [];
                start.SignalAndWait();
                for (int i = 0; i < 20; i++)
                {
                    results.Add(port.Receive(pair.Server, new byte[4], SocketFlags.None, null)); // Must never throw.
                }

                return results;
            }, TaskCreationOptions.LongRunning);
            start.SignalAndWait();
            port.CloseSocket(pair.Server);

            List<SocketError> results = await starter;
            Assert.All(results, result => Assert.True(result is SocketError.IOPending or SocketError.OperationAborted, $"round {round}: {result}"));
            int started = results.Count(result => result == SocketError.IOPending);
            if (started > 0)
            {
                Assert.All(Expect.Completions(port, started), entry => Assert.Equal(SocketError.OperationAborted, entry.SocketError));
            }
        }
    }
}
