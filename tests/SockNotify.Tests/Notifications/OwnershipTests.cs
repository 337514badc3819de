using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class OwnershipTests
{
    [Theory, BothBackends]
    public void A_socket_registered_with_one_port_is_refused_by_another(CompletionPortBackend backend)
    {
        using CompletionPort first = Ports.Create(backend);
        using CompletionPort second = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        first.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));

        Assert.Equal(SocketNotifyResult.RegisteredWithAnotherPort, second.Apply(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level)));
        Assert.Equal(SocketNotifyResult.RegisteredWithAnotherPort, second.Apply(Items.Disable(pair.Server)));
        Assert.Equal(SocketNotifyResult.RegisteredWithAnotherPort, second.Apply(Items.Remove(pair.Server)));

        pair.Client.Send([1]);
        Expect.Events(first, (key, SocketNotifyEvents.In)); // The first registration is untouched.
        Expect.Nothing(second);
    }

    [Theory, BothBackends]
    public void After_Remove_the_socket_may_be_registered_with_another_port(CompletionPortBackend backend)
    {
        using CompletionPort first = Ports.Create(backend);
        using CompletionPort second = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        first.Register(Items.Enable(pair.Server, new Key("first"), SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        first.Register(Items.Remove(pair.Server));

        Key key = new("second");
        second.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        pair.Client.Send([1]);
        Expect.Events(second, (key, SocketNotifyEvents.In));
    }

    [Theory, BothBackends]
    public void After_its_port_is_disposed_the_socket_may_be_registered_with_another_port(CompletionPortBackend backend)
    {
        using TcpPair pair = TcpPair.Create();
        CompletionPort first = Ports.Create(backend);
        first.Register(Items.Enable(pair.Server, new Key("first"), SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        first.Dispose();

        using CompletionPort second = Ports.Create(backend);
        Key key = new("second");
        second.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        pair.Client.Send([1]);
        Expect.Events(second, (key, SocketNotifyEvents.In));
    }
}
