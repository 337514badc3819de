using System.Collections.Concurrent;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

public class RemoveTests
{
    [Theory, BothBackends]
    public void Remove_delivers_exactly_one_Remove_notification_and_nothing_after_it(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.All, SocketNotifyTrigger.Level));
        pair.Client.Send([1]);
        port.Register(Items.Remove(pair.Server));

        List<CompletionEntry> seen = Expect.All(port, 200);
        Assert.Single(seen, e => e.Events == SocketNotifyEvents.Remove);
        Assert.Equal(SocketNotifyEvents.Remove, seen[^1].Events);
        Assert.Same(key, seen[^1].CompletionKey);
        pair.Client.Send([2]);
        Expect.Nothing(port);
    }

    [Theory, BothBackends]
    public void Remove_is_delivered_whatever_the_filter_and_also_for_a_disabled_registration(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.Out, SocketNotifyTrigger.Edge | SocketNotifyTrigger.OneShot));
        port.Register(Items.Disable(pair.Server));
        port.Register(Items.Remove(pair.Server));
        Assert.Contains(Expect.All(port), e => ReferenceEquals(e.CompletionKey, key) && e.Events == SocketNotifyEvents.Remove);
    }

    [Theory, BothBackends]
    public void A_second_Remove_fails_as_not_registered_and_queues_nothing(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        SocketNotifyRegistration[] batch = [Items.Remove(pair.Server), Items.Remove(pair.Server)];
        port.ProcessSocketNotifications(batch);

        Assert.Equal(SocketNotifyResult.Success, batch[0].RegistrationResult);
        Assert.Equal(SocketNotifyResult.NotRegistered, batch[1].RegistrationResult);
        Assert.Single(Expect.All(port), e => e.Events == SocketNotifyEvents.Remove);
    }

    [Theory, BothBackends]
    public void Remove_and_Enable_in_one_batch_re_register_with_the_new_key_after_the_Remove(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key first = new("first");
        Key second = new("second");
        port.Register(Items.Enable(pair.Server, first, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        SocketNotifyRegistration[] batch =
        [
            Items.Remove(pair.Server),
            Items.Enable(pair.Server, second, SocketNotifyEvents.In, SocketNotifyTrigger.Level),
        ];
        port.ProcessSocketNotifications(batch);
        pair.Client.Send([1]);

        List<CompletionEntry> seen = Expect.Events(port, (first, SocketNotifyEvents.Remove), (second, SocketNotifyEvents.In));
        Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, first) && e.Events != SocketNotifyEvents.Remove);
    }

    /// <summary>
    /// Many threads dequeue persistent level notifications from sockets with traffic flowing, while a controller
    /// removes the registrations one by one. For every key: exactly one Remove, and no notification of that key from a
    /// dequeue call that started after some thread had received its Remove (the guarantee that lets the key be freed).
    /// </summary>
    [Theory, BothBackends]
    public void Remove_is_the_last_notification_of_its_key_while_many_threads_dequeue_under_traffic(CompletionPortBackend backend)
    {
        const int Connections = 32;
        const int Dequeuers = 4;
        using CompletionPort port = Ports.Create(backend);
        TcpPair[] pairs = Enumerable.Range(0, Connections).Select(_ => TcpPair.Create()).ToArray();
        StressKey[] keys = Enumerable.Range(0, Connections).Select(i => new StressKey(i)).ToArray();
        try
        {
            for (int i = 0; i < Connections; i++)
            {
                port.Register(Items.Enable(pairs[i].Server, keys[i], SocketNotifyEvents.In | SocketNotifyEvents.Out, SocketNotifyTrigger.Level));
            }

            long clock = 0;
            int removesSeen = 0;
            ConcurrentQueue<string> violations = new();
            using CancellationTokenSource stop = new(TimeSpan.FromSeconds(20));
            Thread[] dequeuers = Enumerable.Range(0, Dequeuers).Select(_ => new Thread(() =>
            {
                CompletionEntry[] entries = new CompletionEntry[8];
                while (Volatile.Read(ref removesSeen) < Connections && !stop.IsCancellationRequested)
                {
                    long callStart = Volatile.Read(ref clock);
                    if (port.GetQueuedCompletionStatus(entries, out int count, 10) != CompletionWaitResult.Success)
                    {
                        continue;
                    }

                    foreach (CompletionEntry entry in entries.AsSpan(0, count))
                    {
                        StressKey key = (StressKey)entry.CompletionKey!;
                        if (entry.Events == SocketNotifyEvents.Remove)
                        {
                            if (Interlocked.CompareExchange(ref key.RemoveStamp, Interlocked.Increment(ref clock), 0) != 0)
                            {
                                violations.Enqueue($"{key.Index}: second Remove");
                            }

                            Interlocked.Increment(ref removesSeen);
                            continue;
                        }

                        long removedAt = Volatile.Read(ref key.RemoveStamp);
                        if (removedAt != 0 && removedAt <= callStart)
                        {
                            violations.Enqueue($"{key.Index}: {entry.Events} from a call that started after its Remove was received");
                        }
                    }
                }
            })).ToArray();

            foreach (Thread dequeuer in dequeuers)
            {
                dequeuer.Start();
            }

            // Traffic: every client keeps sending while the registrations are removed one by one.
            using CancellationTokenSource trafficStop = new();
            Thread traffic = new(() =>
            {
                byte[] payload = new byte[64];
                while (!trafficStop.IsCancellationRequested)
                {
                    foreach (TcpPair pair in pairs)
                    {
                        pair.Client.Send(payload);
                        TcpPair.Drain(pair.Server);
                    }
                }
            });
            traffic.Start();

            for (int i = 0; i < Connections; i++)
            {
                Thread.Sleep(5);
                Assert.Equal(SocketNotifyResult.Success, port.Apply(Items.Remove(pairs[i].Server)));
            }

            foreach (Thread dequeuer in dequeuers)
            {
                dequeuer.Join();
            }

            trafficStop.Cancel();
            traffic.Join();

            Assert.Empty(violations);
            Assert.Equal(Connections, removesSeen);
            Assert.All(keys, k => Assert.NotEqual(0, k.RemoveStamp));
            Assert.Equal(0, port.RegistrationCount);
        }
        finally
        {
            foreach (TcpPair pair in pairs)
            {
                pair.Dispose();
            }
        }
    }

    /// <summary>
    /// The seed's multithreaded pattern: OneShot registrations re-armed or removed by the thread that handled the
    /// notification. Under traffic, once a thread receives a key's Remove no thread ever receives that key again.
    /// </summary>
    [Theory, BothBackends]
    public void With_OneShot_registrations_nothing_of_a_key_is_received_after_its_Remove_by_any_thread(CompletionPortBackend backend)
    {
        const int Connections = 32;
        const int MessagesPerConnection = 20;
        using CompletionPort port = Ports.Create(backend);
        TcpPair[] pairs = Enumerable.Range(0, Connections).Select(_ => TcpPair.Create()).ToArray();
        StressKey[] keys = Enumerable.Range(0, Connections).Select(i => new StressKey(i) { Socket = pairs[i].Server }).ToArray();
        try
        {
            const SocketNotifyTrigger OneShotLevel = SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot;
            for (int i = 0; i < Connections; i++)
            {
                port.Register(Items.Enable(pairs[i].Server, keys[i], SocketNotifyEvents.In | SocketNotifyEvents.Hangup, OneShotLevel));
            }

            int removed = 0;
            ConcurrentQueue<string> violations = new();
            using CancellationTokenSource stop = new(TimeSpan.FromSeconds(20));
            Thread[] workers = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
            {
                CompletionEntry[] entries = new CompletionEntry[4];
                SocketNotifyRegistration[] rearm = new SocketNotifyRegistration[4];
                int rearmCount = 0;
                byte[] buffer = new byte[4096];
                while (Volatile.Read(ref removed) < Connections && !stop.IsCancellationRequested)
                {
                    port.ProcessSocketNotifications(rearm.AsSpan(0, rearmCount), 10, entries, out int count);
                    for (int r = 0; r < rearmCount; r++)
                    {
                        if (rearm[r].RegistrationResult != SocketNotifyResult.Success)
                        {
                            violations.Enqueue($"re-arm failed: {rearm[r].RegistrationResult}");
                        }
                    }

                    rearmCount = 0;
                    foreach (CompletionEntry entry in entries.AsSpan(0, count))
                    {
                        StressKey key = (StressKey)entry.CompletionKey!;
                        if (Volatile.Read(ref key.RemoveStamp) != 0)
                        {
                            violations.Enqueue($"{key.Index}: {entry.Events} after Remove");
                            continue;
                        }

                        if (entry.Events == SocketNotifyEvents.Remove)
                        {
                            Volatile.Write(ref key.RemoveStamp, 1);
                            Interlocked.Increment(ref removed);
                            continue;
                        }

                        int read = key.Socket!.Receive(buffer, SocketFlags.None, out SocketError error);
                        bool closed = (error == SocketError.Success && read == 0) || (error != SocketError.Success && error != SocketError.WouldBlock);
                        rearm[rearmCount++] = closed
                            ? Items.Remove(key.Socket)
                            : Items.Enable(key.Socket, key, SocketNotifyEvents.In | SocketNotifyEvents.Hangup, OneShotLevel);
                    }
                }
            })).ToArray();

            foreach (Thread worker in workers)
            {
                worker.Start();
            }

            byte[] payload = new byte[100];
            for (int m = 0; m < MessagesPerConnection; m++)
            {
                foreach (TcpPair pair in pairs)
                {
                    pair.Client.Send(payload);
                }
            }

            foreach (TcpPair pair in pairs)
            {
                pair.Client.Shutdown(SocketShutdown.Send);
            }

            foreach (Thread worker in workers)
            {
                worker.Join();
            }

            Assert.Empty(violations);
            Assert.Equal(Connections, removed);
            Assert.Equal(0, port.RegistrationCount);
        }
        finally
        {
            foreach (TcpPair pair in pairs)
            {
                pair.Dispose();
            }
        }
    }

    [Theory, BothBackends]
    public void DeregisterAndWait_ends_the_registration_without_dropping_or_queuing_anything(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair deregistered = TcpPair.Create();
        using TcpPair other = TcpPair.Create();
        Key deregisteredKey = new("deregistered");
        Key otherKey = new("other");
        port.Register(Items.Enable(deregistered.Server, deregisteredKey, SocketNotifyEvents.In, SocketNotifyTrigger.Edge));
        port.Register(Items.Enable(other.Server, otherKey, SocketNotifyEvents.In, SocketNotifyTrigger.Edge));
        other.Client.Send([1]); // An edge: if it were dropped, it would never come again.
        deregistered.Client.Send([1]);
        Thread.Sleep(20);

        Assert.Equal(SocketNotifyResult.Success, port.DeregisterAndWait(deregistered.Server));
        List<CompletionEntry> seen = Expect.Events(port, (otherKey, SocketNotifyEvents.In));
        seen.AddRange(Expect.All(port));
        Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, deregisteredKey));
        Assert.Equal(SocketNotifyResult.NotRegistered, port.DeregisterAndWait(deregistered.Server));
        Assert.Equal(1, port.RegistrationCount);
    }

    private sealed class StressKey(int index)
    {
        public int Index { get; } = index;

        public Socket? Socket { get; init; }

        public long RemoveStamp;
    }
}
