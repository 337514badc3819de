using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class EnableTests
{
    [Theory, BothBackends]
    public void Enable_on_an_existing_registration_updates_the_filter_but_keeps_the_original_key(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key original = new("original");
        Key ignored = new("ignored");
        port.Register(Items.Enable(pair.Server, original, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        Expect.Nothing(port); // No data yet, and Out was not asked for.

        port.Register(Items.Enable(pair.Server, ignored, SocketNotifyEvents.Out, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        List<CompletionEntry> seen = Expect.Events(port, (original, SocketNotifyEvents.Out));
        Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, ignored));

        // The new triggers apply too: OneShot, so Out is not repeated.
        Expect.Nothing(port);
    }

    [Theory, BothBackends]
    public void Remove_then_register_again_changes_the_key(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key first = new("first");
        Key second = new("second");
        port.Register(Items.Enable(pair.Server, first, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        port.Register(Items.Remove(pair.Server));
        Expect.Events(port, (first, SocketNotifyEvents.Remove));

        port.Register(Items.Enable(pair.Server, second, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        pair.Client.Send([1]);
        List<CompletionEntry> seen = Expect.Events(port, (second, SocketNotifyEvents.In));
        Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, first));
    }

    [Theory, BothBackends]
    public void The_completion_key_may_be_any_object_or_null(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        port.Register(Items.Enable(pair.Server, null, SocketNotifyEvents.Out, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        CompletionEntry[] entries = new CompletionEntry[4];
        Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, Expect.DeadlineMilliseconds));
        Assert.Equal(1, count);
        Assert.Null(entries[0].CompletionKey);
        Assert.Equal(SocketNotifyEvents.Out, entries[0].Events);
        Assert.Null(entries[0].Context);
    }
}
