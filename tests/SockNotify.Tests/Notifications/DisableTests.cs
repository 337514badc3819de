using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class DisableTests
{
    [Theory, BothBackends]
    public void Nothing_is_delivered_while_disabled_and_Enable_resumes_with_the_same_key(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In | SocketNotifyEvents.Hangup, SocketNotifyTrigger.Level));
        port.Register(Items.Disable(pair.Server));

        pair.Client.Send([1]);
        Expect.Nothing(port);

        port.Register(Items.Enable(pair.Server, new Key("ignored"), SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }

    [Theory, BothBackends]
    public void Errors_and_hangups_are_not_delivered_while_disabled(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        port.Register(Items.Disable(pair.Server));

        pair.Client.LingerState = new System.Net.Sockets.LingerOption(true, 0);
        pair.Client.Close(); // RST: Err and Hangup conditions, which epoll reports even for an empty mask.
        Expect.Nothing(port, 200);
    }

    [Fact]
    public void Disable_of_an_already_disabled_registration_succeeds()
    {
        using CompletionPort port = new();
        using TcpPair pair = TcpPair.Create();
        port.Register(Items.Enable(pair.Server, new Key("server"), SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        port.Register(Items.Disable(pair.Server));
        Assert.Equal(SocketNotifyResult.Success, port.Apply(Items.Disable(pair.Server)));
    }
}
