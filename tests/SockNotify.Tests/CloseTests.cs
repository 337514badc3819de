using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests;

public class CloseTests
{
    [Fact]
    public void Disposing_a_registered_socket_deregisters_it_without_a_Remove()
    {
        using CompletionPort port = new();
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        pair.Server.Dispose();
        pair.Client.Send([1]);

        Expect.Nothing(port, 200);
        Assert.Equal(SocketNotifyResult.SocketClosed, port.Apply(Items.Remove(pair.Server)));
        Expect.Nothing(port);
        Assert.Equal(0, port.RegistrationCount);
    }

    [Fact]
    public void A_new_socket_that_reuses_a_closed_sockets_descriptor_gets_no_stale_notification()
    {
        using CompletionPort port = new();
        Key oldKey = new("old");
        Key newKey = new("new");
        TcpPair old = TcpPair.Create();
        port.Register(Items.Enable(old.Server, oldKey, SocketNotifyEvents.In | SocketNotifyEvents.Out, SocketNotifyTrigger.Level));
        old.Client.Send([1]);
        long descriptor = old.Server.SafeHandle.DangerousGetHandle();
        old.Dispose();

        // Sockets get the lowest free descriptor, so the next accepted socket usually takes the old number.
        using TcpPair reuse = TcpPair.Create();
        using TcpPair other = TcpPair.Create();
        Socket? reused = new[] { reuse.Server, reuse.Client, other.Server, other.Client }
            .FirstOrDefault(s => s.SafeHandle.DangerousGetHandle() == descriptor);
        Assert.NotNull(reused);

        port.Register(Items.Enable(reused, newKey, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        List<CompletionEntry> seen = Expect.All(port, 200);
        Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, oldKey));
        Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, newKey)); // No data on the new socket yet.
    }

    [Fact]
    public void A_closed_socket_can_be_replaced_under_the_same_descriptor_and_notify_with_its_own_key()
    {
        using CompletionPort port = new();
        TcpPair old = TcpPair.Create();
        port.Register(Items.Enable(old.Server, new Key("old"), SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        long descriptor = old.Server.SafeHandle.DangerousGetHandle();
        old.Dispose();

        using TcpPair fresh = TcpPair.Create();
        using TcpPair spare = TcpPair.Create();
        TcpPair? owner = new[] { fresh, spare }.FirstOrDefault(p => p.Server.SafeHandle.DangerousGetHandle() == descriptor);
        Socket peer = owner?.Client ?? fresh.Client;
        Socket registered = owner?.Server ?? fresh.Server;
        Key key = new("fresh");
        port.Register(Items.Enable(registered, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        peer.Send([1]);
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }

    [Fact]
    public void Registrations_of_sockets_closed_without_Remove_are_reclaimed()
    {
        using CompletionPort port = new();
        for (int i = 0; i < 1000; i++)
        {
            using TcpPair pair = TcpPair.Create();
            port.Register(Items.Enable(pair.Server, new Key("k"), SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        }

        // Closed registrations are swept whenever the table would otherwise grow, so it stays at its first size.
        Assert.InRange(port.RegistrationCount, 0, 64);
    }
}
