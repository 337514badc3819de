using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class EventMappingTests
{
    [Theory, BothBackends]
    public void Readable_data_is_In_and_free_send_space_is_Out(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.Out, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        Expect.Events(port, (key, SocketNotifyEvents.Out));

        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        Expect.Nothing(port);
        pair.Client.Send([1]);
        List<CompletionEntry> seen = Expect.Events(port, (key, SocketNotifyEvents.In));
        Assert.All(seen, e => Assert.Equal(SocketNotifyEvents.None, e.Events & SocketNotifyEvents.Out)); // Out was not asked for.
    }

    [Theory, BothBackends]
    public void A_full_send_buffer_is_not_Out_and_draining_it_on_the_peer_makes_it_Out(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        byte[] chunk = new byte[65536];
        while (pair.Server.Send(chunk, SocketFlags.None, out SocketError error) > 0 && error == SocketError.Success)
        {
        }

        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.Out, SocketNotifyTrigger.Edge));
        Expect.Nothing(port);

        pair.Client.Blocking = false;
        TcpPair.Drain(pair.Client);
        Expect.Events(port, (key, SocketNotifyEvents.Out));
    }

    [Theory, BothBackends]
    public void A_peer_FIN_is_Hangup_together_with_In(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In | SocketNotifyEvents.Hangup, SocketNotifyTrigger.Level));
        pair.Client.Shutdown(SocketShutdown.Send);
        Expect.Events(port, (key, SocketNotifyEvents.In | SocketNotifyEvents.Hangup));
    }

    [Theory, BothBackends]
    public void A_peer_FIN_is_not_Hangup_when_Hangup_was_not_asked_for(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        pair.Client.Shutdown(SocketShutdown.Send);
        List<CompletionEntry> seen = Expect.Events(port, (key, SocketNotifyEvents.In));
        Assert.All(seen, e => Assert.Equal(SocketNotifyEvents.In, e.Events));
    }

    [Theory, BothBackends]
    public void A_reset_is_Err_whatever_the_filter(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.Out, SocketNotifyTrigger.Edge));
        Expect.Events(port, (key, SocketNotifyEvents.Out));

        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close(); // SO_LINGER 0: the close sends RST.
        Expect.Events(port, (key, SocketNotifyEvents.Err));
        pair.Server.Receive(new byte[1], SocketFlags.None, out SocketError error);
        Assert.Equal(SocketError.ConnectionReset, error);
    }

    [Theory, BothBackends]
    public void A_refused_connect_is_Err(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        EndPoint closedPort;
        using (Socket probe = Loopback.Listener())
        {
            closedPort = probe.LocalEndPoint!; // Nothing listens there once the probe is closed.
        }

        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { Blocking = false };
        Key key = new("client");
        SocketException pending = Assert.Throws<SocketException>(() => client.Connect(closedPort));
        Assert.Equal(SocketError.WouldBlock, pending.SocketErrorCode);
        port.Register(Items.Enable(client, key, SocketNotifyEvents.Out, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));

        Expect.Events(port, (key, SocketNotifyEvents.Err));
        Assert.Equal((int)SocketError.ConnectionRefused, (int)client.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!);
    }

    [Theory, BothBackends]
    public void A_pending_connection_on_a_listener_is_In(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        Key key = new("listener");
        port.Register(Items.Enable(listener, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        Expect.Events(port, (key, SocketNotifyEvents.In));
        using Socket accepted = listener.Accept();
    }

    [Theory, BothBackends]
    public void Several_conditions_on_one_socket_coalesce_into_one_entry(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        pair.Client.Send([1]);
        pair.Client.Shutdown(SocketShutdown.Send);
        Thread.Sleep(50); // Let data and FIN both arrive before the registration is made.

        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.All, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        CompletionEntry[] entries = new CompletionEntry[8];
        Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, Expect.DeadlineMilliseconds));
        Assert.Equal(1, count);
        Assert.Equal(SocketNotifyEvents.In | SocketNotifyEvents.Out | SocketNotifyEvents.Hangup, entries[0].Events);
    }

    [Theory, BothBackends]
    public void An_unconnected_stream_socket_reports_Hangup_whatever_the_filter_instead_of_spinning_silently(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket unconnected = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Key key = new("unconnected");
        port.Register(Items.Enable(unconnected, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        Expect.Events(port, (key, SocketNotifyEvents.Hangup));
    }
}
