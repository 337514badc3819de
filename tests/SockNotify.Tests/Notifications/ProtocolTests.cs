using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class ProtocolTests
{
    [Theory]
    [BothBackends(AddressFamily.InterNetwork)]
    [BothBackends(AddressFamily.InterNetworkV6)]
    public void Tcp_notifies_In_and_Hangup(CompletionPortBackend backend, AddressFamily family)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create(family);
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In | SocketNotifyEvents.Hangup, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        pair.Client.Send([1, 2, 3, 4]);
        Expect.Events(port, (key, SocketNotifyEvents.In));
        Assert.Equal(4, TcpPair.Drain(pair.Server));

        pair.Client.Shutdown(SocketShutdown.Both);
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In | SocketNotifyEvents.Hangup, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        Expect.Events(port, (key, SocketNotifyEvents.Hangup));
    }

    [Theory]
    [BothBackends(AddressFamily.InterNetwork)]
    [BothBackends(AddressFamily.InterNetworkV6)]
    public void Udp_registered_before_bind_receives_every_datagram_edge_triggered_and_never_Hangup(CompletionPortBackend backend, AddressFamily family)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket server = new(family, SocketType.Dgram, ProtocolType.Udp);
        Key key = new("udp");
        // As in the seed: register before bind so that no datagram can arrive unnoticed.
        port.Register(Items.Enable(server, key, SocketNotifyEvents.In | SocketNotifyEvents.Hangup, SocketNotifyTrigger.Edge));
        server.Blocking = false;
        server.Bind(new IPEndPoint(Loopback.Address(family), 0));

        using Socket client = new(family, SocketType.Dgram, ProtocolType.Udp);
        const int Datagrams = 10;
        int received = 0;
        byte[] buffer = new byte[512];
        CompletionEntry[] entries = new CompletionEntry[4];
        for (int sent = 0; sent < Datagrams; sent++)
        {
            client.SendTo(new byte[] { (byte)sent }, server.LocalEndPoint!);
        }

        while (received < Datagrams)
        {
            Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, Expect.DeadlineMilliseconds));
            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                Assert.Same(key, entry.CompletionKey);
                Assert.Equal(SocketNotifyEvents.None, entry.Events & (SocketNotifyEvents.Hangup | SocketNotifyEvents.Err));
                while (server.Receive(buffer, SocketFlags.None, out SocketError error) > 0 || error == SocketError.Success)
                {
                    received++;
                }
            }
        }

        Assert.Equal(Datagrams, received);
        Expect.Nothing(port);
    }
}
