using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class EdgeTriggerTests
{
    [Theory, BothBackends]
    public void Edge_notifies_once_when_data_arrives_not_again_while_it_stays_unread(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Edge));
        pair.Client.Send([1]);

        Expect.Events(port, (key, SocketNotifyEvents.In));
        Expect.Nothing(port);
    }

    [Theory, BothBackends]
    public void Edge_notifies_again_for_new_data_after_a_full_drain(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Edge));

        for (int i = 0; i < 5; i++)
        {
            pair.Client.Send([1, 2, 3]);
            Expect.Events(port, (key, SocketNotifyEvents.In));
            Assert.Equal(3, TcpPair.Drain(pair.Server));
        }
    }

    [Theory, BothBackends]
    public void Edge_registered_while_data_is_already_present_notifies_it(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        pair.Client.Send([1]);
        Thread.Sleep(20);

        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Edge));
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }

    [Theory, BothBackends]
    public void OneShot_edge_fires_once_until_enabled_again(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        SocketNotifyRegistration item = Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Edge | SocketNotifyTrigger.OneShot);
        port.Register(item);

        pair.Client.Send([1]);
        Expect.Events(port, (key, SocketNotifyEvents.In));
        pair.Client.Send([2]); // A new edge while disarmed is not reported...
        Expect.Nothing(port);

        port.Register(item); // ...until re-armed, when the pending data counts as a new edge.
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }
}
