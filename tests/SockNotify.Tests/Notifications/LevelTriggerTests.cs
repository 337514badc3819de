using System.Collections.Concurrent;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class LevelTriggerTests
{
    [Theory, BothBackends]
    public void Persistent_level_notifies_again_on_every_dequeue_while_data_is_unread(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.Persistent));
        pair.Client.Send([1]);

        for (int i = 0; i < 3; i++)
        {
            Expect.Events(port, (key, SocketNotifyEvents.In));
        }

        TcpPair.Drain(pair.Server);
        Expect.Nothing(port);
    }

    [Theory, BothBackends]
    public void Level_without_OneShot_or_Persistent_is_persistent(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        pair.Client.Send([1]);

        Expect.Events(port, (key, SocketNotifyEvents.In));
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }

    [Theory, BothBackends]
    public void OneShot_level_notifies_once_then_stays_disabled_until_enabled_again(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        SocketNotifyRegistration oneShot = Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot);
        port.Register(oneShot);
        pair.Client.Send([1]);

        Expect.Events(port, (key, SocketNotifyEvents.In));
        Expect.Nothing(port); // The data is still unread, but the registration fired once.

        port.Register(oneShot); // Re-arm: the condition still holds, so it fires again at once.
        Expect.Events(port, (key, SocketNotifyEvents.In));
        Expect.Nothing(port);
    }

    [Theory, BothBackends]
    public void OneShot_level_is_disabled_not_removed_after_it_fires(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        pair.Client.Send([1]);
        Expect.Events(port, (key, SocketNotifyEvents.In));

        // Still registered: Remove succeeds and produces the Remove notification.
        Assert.Equal(SocketNotifyResult.Success, port.Apply(Items.Remove(pair.Server)));
        Expect.Events(port, (key, SocketNotifyEvents.Remove));
    }

    [Theory, BothBackends]
    public void OneShot_notification_reaches_exactly_one_of_many_waiting_threads(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        SocketNotifyRegistration oneShot = Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot);
        port.Register(oneShot);
        pair.Client.Send([1]); // Never read: the level condition holds for the whole test.
        Expect.Events(port, (key, SocketNotifyEvents.In)); // Fires once and disarms: from here on, one re-arm, one delivery.

        const int Rounds = 20;
        ConcurrentBag<int> deliveries = [];
        using Barrier roundStart = new(5);
        Thread[] waiters = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            CompletionEntry[] entries = new CompletionEntry[8];
            for (int round = 0; round < Rounds; round++)
            {
                roundStart.SignalAndWait();
                int mine = 0;
                while (port.GetQueuedCompletionStatus(entries, out int count, 50) == CompletionWaitResult.Success)
                {
                    mine += entries.AsSpan(0, count).ToArray().Count(e => ReferenceEquals(e.CompletionKey, key));
                }

                deliveries.Add(mine);
                roundStart.SignalAndWait();
            }
        })).ToArray();

        foreach (Thread waiter in waiters)
        {
            waiter.Start();
        }

        for (int round = 0; round < Rounds; round++)
        {
            roundStart.SignalAndWait(); // All four threads are about to wait...
            port.Register(oneShot);     // ...and one re-arm must wake exactly one of them, once.
            roundStart.SignalAndWait();
        }

        foreach (Thread waiter in waiters)
        {
            waiter.Join();
        }

        Assert.Equal(Rounds * 4, deliveries.Count);
        Assert.Equal(Rounds, deliveries.Sum());
        Assert.All(deliveries, d => Assert.InRange(d, 0, 1));
    }
}
