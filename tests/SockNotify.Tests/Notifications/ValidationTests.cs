using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class ValidationTests
{
    [Theory]
    [BothBackends(SocketNotifyEvents.In, SocketNotifyOperation.Enable, SocketNotifyTrigger.Level | SocketNotifyTrigger.Edge)]
    [BothBackends(SocketNotifyEvents.In, SocketNotifyOperation.Enable, SocketNotifyTrigger.None)]
    [BothBackends(SocketNotifyEvents.In, SocketNotifyOperation.Enable, SocketNotifyTrigger.OneShot)]
    [BothBackends(SocketNotifyEvents.In, SocketNotifyOperation.Enable, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Persistent)]
    [BothBackends(SocketNotifyEvents.In, SocketNotifyOperation.Enable, SocketNotifyTrigger.Level | (SocketNotifyTrigger)0x10)]
    [BothBackends(SocketNotifyEvents.None, SocketNotifyOperation.Enable, SocketNotifyTrigger.Level)]
    [BothBackends(SocketNotifyEvents.Err, SocketNotifyOperation.Enable, SocketNotifyTrigger.Level)]
    [BothBackends(SocketNotifyEvents.In | SocketNotifyEvents.Remove, SocketNotifyOperation.Enable, SocketNotifyTrigger.Level)]
    [BothBackends(SocketNotifyEvents.In, SocketNotifyOperation.Remove | SocketNotifyOperation.Enable, SocketNotifyTrigger.Level)]
    [BothBackends(SocketNotifyEvents.In, SocketNotifyOperation.Disable | SocketNotifyOperation.Enable, SocketNotifyTrigger.Level)]
    [BothBackends(SocketNotifyEvents.In, (SocketNotifyOperation)8, SocketNotifyTrigger.Level)]
    public void A_malformed_item_is_a_per_item_result_and_does_not_stop_the_batch(
        CompletionPortBackend backend, SocketNotifyEvents filter, SocketNotifyOperation operation, SocketNotifyTrigger trigger)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair bad = TcpPair.Create();
        using TcpPair good = TcpPair.Create();
        Key key = new("good");
        SocketNotifyRegistration[] batch =
        [
            new() { Socket = bad.Server, CompletionKey = new Key("bad"), EventFilter = filter, Operation = operation, TriggerFlags = trigger },
            Items.Enable(good.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level),
        ];
        port.ProcessSocketNotifications(batch);

        Assert.Equal(SocketNotifyResult.InvalidRegistration, batch[0].RegistrationResult);
        Assert.Equal(SocketNotifyResult.Success, batch[1].RegistrationResult);
        Assert.Equal(1, port.RegistrationCount); // Nothing was registered for the bad item.
        good.Client.Send([1]);
        bad.Client.Send([1]);
        List<CompletionEntry> seen = Expect.Events(port, (key, SocketNotifyEvents.In));
        Assert.All(seen, e => Assert.Same(key, e.CompletionKey));
    }

    [Fact]
    public void An_item_without_a_socket_is_malformed()
    {
        using CompletionPort port = new();
        Assert.Equal(SocketNotifyResult.InvalidRegistration, port.Apply(new SocketNotifyRegistration
        {
            Operation = SocketNotifyOperation.Enable, EventFilter = SocketNotifyEvents.In, TriggerFlags = SocketNotifyTrigger.Level,
        }));
    }

    [Theory, BothBackends]
    public void A_malformed_Enable_leaves_an_existing_registration_unchanged(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        Assert.Equal(SocketNotifyResult.InvalidRegistration, port.Apply(Items.Enable(pair.Server, key, SocketNotifyEvents.None, SocketNotifyTrigger.Level)));
        pair.Client.Send([1]);
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }

    [Fact]
    public void An_operation_of_None_changes_nothing_and_succeeds()
    {
        using CompletionPort port = new();
        using TcpPair pair = TcpPair.Create();
        Assert.Equal(SocketNotifyResult.Success, port.Apply(new SocketNotifyRegistration { Socket = pair.Server }));
        Assert.Equal(0, port.RegistrationCount);
    }

    [Fact]
    public void A_closed_socket_is_refused_in_every_operation()
    {
        using CompletionPort port = new();
        Socket closed = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Dispose();
        Assert.Equal(SocketNotifyResult.SocketClosed, port.Apply(Items.Enable(closed, null, SocketNotifyEvents.In, SocketNotifyTrigger.Level)));
        Assert.Equal(SocketNotifyResult.SocketClosed, port.Apply(Items.Disable(closed)));
        Assert.Equal(SocketNotifyResult.SocketClosed, port.Apply(Items.Remove(closed)));
    }

    [Theory, BothBackends]
    public void Disable_or_Remove_of_a_socket_that_was_never_registered_fails_as_not_registered(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Assert.Equal(SocketNotifyResult.NotRegistered, port.Apply(Items.Disable(pair.Server)));
        Assert.Equal(SocketNotifyResult.NotRegistered, port.Apply(Items.Remove(pair.Server)));
        Expect.Nothing(port);
    }

    [Fact]
    public void A_negative_timeout_other_than_infinite_is_an_argument_error()
    {
        using CompletionPort port = new();
        Assert.Throws<ArgumentOutOfRangeException>(() => port.GetQueuedCompletionStatus(new CompletionEntry[1], out _, -2));
    }
}
