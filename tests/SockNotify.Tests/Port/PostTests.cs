using System.Collections.Concurrent;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Port;

public class PostTests
{
    [Theory, BothBackends]
    public void A_posted_packet_arrives_intact(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Key key = new("key");
        object context = new();
        port.PostQueuedCompletionStatus(key, 0xdeadbeef, context);

        CompletionEntry[] entries = new CompletionEntry[4];
        Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, 1000));
        Assert.Equal(1, count);
        Assert.Same(key, entries[0].CompletionKey);
        Assert.Equal(0xdeadbeefu, entries[0].BytesTransferred);
        Assert.Same(context, entries[0].Context);
    }

    [Theory, BothBackends]
    public void Posted_packets_arrive_in_the_order_they_were_posted(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        for (uint i = 0; i < 1000; i++)
        {
            port.PostQueuedCompletionStatus(null, i, null);
        }

        List<uint> received = [];
        CompletionEntry[] entries = new CompletionEntry[7]; // Not a divisor of 1000: batches end mid-queue.
        while (port.GetQueuedCompletionStatus(entries, out int count, 0) == CompletionWaitResult.Success)
        {
            received.AddRange(entries.Take(count).Select(e => e.BytesTransferred));
        }

        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (uint)i), received);
    }

    [Theory, BothBackends]
    public void Packets_posted_from_many_threads_each_reach_exactly_one_of_many_waiters(CompletionPortBackend backend)
    {
        const int Posters = 4;
        const int PerPoster = 5000;
        using CompletionPort port = Ports.Create(backend);
        int[] seen = new int[Posters * PerPoster];
        int total = 0;
        Thread[] waiters = Enumerable.Range(0, 4).Select(_ => new Thread(() =>
        {
            CompletionEntry[] entries = new CompletionEntry[3];
            while (Volatile.Read(ref total) < seen.Length)
            {
                if (port.GetQueuedCompletionStatus(entries, out int count, 20) == CompletionWaitResult.Success)
                {
                    foreach (CompletionEntry entry in entries.AsSpan(0, count))
                    {
                        Interlocked.Increment(ref seen[entry.BytesTransferred]);
                        Interlocked.Increment(ref total);
                    }
                }
            }
        })).ToArray();
        Thread[] posters = Enumerable.Range(0, Posters).Select(p => new Thread(() =>
        {
            for (int i = 0; i < PerPoster; i++)
            {
                port.PostQueuedCompletionStatus(null, (uint)(p * PerPoster + i), null);
            }
        })).ToArray();

        foreach (Thread thread in waiters.Concat(posters))
        {
            thread.Start();
        }

        Assert.True(waiters.All(w => w.Join(TimeSpan.FromSeconds(30))), $"only {total} of {seen.Length} packets arrived");
        Assert.All(seen, s => Assert.Equal(1, s));
        Assert.Equal(CompletionWaitResult.TimedOut, port.GetQueuedCompletionStatus(new CompletionEntry[1], out _, 0));
    }

    [Theory, BothBackends]
    public void A_post_wakes_a_thread_blocked_with_an_infinite_timeout_and_socket_notifications_interleave(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key socketKey = new("socket");
        Key postKey = new("post");
        port.Register(Items.Enable(pair.Server, socketKey, SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        ConcurrentQueue<object?> keys = new();
        Thread waiter = new(() =>
        {
            CompletionEntry[] entries = new CompletionEntry[1];
            for (int i = 0; i < 2; i++)
            {
                port.GetQueuedCompletionStatus(entries, out _, Timeout.Infinite);
                keys.Enqueue(entries[0].CompletionKey);
            }
        });
        waiter.Start();
        Thread.Sleep(50);
        port.PostQueuedCompletionStatus(postKey, 0, null);
        pair.Client.Send([1]);
        Assert.True(waiter.Join(Expect.DeadlineMilliseconds));
        Assert.Equal(new HashSet<object?> { postKey, socketKey }, keys.ToHashSet());
    }
}
