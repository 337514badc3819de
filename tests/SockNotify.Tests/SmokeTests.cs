using SockNotify.Tests.Support;

namespace SockNotify.Tests;

public class SmokeTests
{
    [Fact]
    public void Data_on_a_registered_socket_is_notified_as_In()
    {
        using CompletionPort port = new();
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        pair.Client.Send([1, 2, 3]);
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }
}
