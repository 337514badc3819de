using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Port;

/// <summary>No source of entries starves another, and one thread dequeues completions in the order they happened.</summary>
public class OrderAndFairnessTests
{
    [Theory, BothBackends]
    public void Posts_Removes_and_completions_reach_a_one_entry_dequeuer_while_a_level_registration_stays_ready(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair ready = TcpPair.Create();
        using TcpPair removed = TcpPair.Create();
        using TcpPair operated = Ports.AssociatedPair(port, "operated");
        ready.Client.Send([1]); // Never read: a level registration reports it on every dequeue.
        port.Register(Items.Enable(ready.Server, "ready", SocketNotifyEvents.In, SocketNotifyTrigger.Level | SocketNotifyTrigger.Persistent));
        port.Register(Items.Enable(removed.Server, "removed", SocketNotifyEvents.Out, SocketNotifyTrigger.Edge | SocketNotifyTrigger.Persistent));
        Expect.Events(port, ("ready", SocketNotifyEvents.In), ("removed", SocketNotifyEvents.Out));

        port.PostQueuedCompletionStatus("post", 5, null);
        port.Register(Items.Remove(removed.Server));
        Expect.Started(port.Receive(operated.Server, new byte[4], SocketFlags.None, "receive"));
        operated.Client.Send([2]);

        HashSet<object> awaited = ["post", "removed", "operated"];
        CompletionEntry[] one = new CompletionEntry[1];
        for (int call = 0; call < 200 && awaited.Count > 0; call++)
        {
            Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(one, out int count, Expect.DeadlineMilliseconds));
            Assert.Equal(1, count);
            awaited.Remove(one[0].CompletionKey!);
        }

        Assert.Empty(awaited);
    }

    [Theory, BothBackends]
    public void A_completion_reaches_a_one_entry_dequeuer_while_posts_never_stop(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "operated");
        for (int i = 0; i < 1000; i++)
        {
            port.PostQueuedCompletionStatus("post", 0, null);
        }

        Expect.Started(port.Receive(pair.Server, new byte[4], SocketFlags.None, "receive"));
        pair.Client.Send([1]);
        CompletionEntry[] one = new CompletionEntry[1];
        bool received = false;
        for (int call = 0; call < 10_000 && !received; call++)
        {
            Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(one, out _, Expect.DeadlineMilliseconds));
            received = (string?)one[0].Context == "receive";
            if (!received)
            {
                port.PostQueuedCompletionStatus("post", 0, null); // Another post for each one taken: the queue never empties.
            }
        }

        Assert.True(received, "Posts kept the completion from ever being dequeued.");
    }

    [Theory, BothBackends]
    public void A_receive_that_completed_first_is_dequeued_first(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair first = Ports.AssociatedPair(port, "first");
        using TcpPair second = Ports.AssociatedPair(port, "second");
        first.Client.Send([(byte)'A']);
        Thread.Sleep(50);
        Expect.Started(port.Receive(first.Server, new byte[4], SocketFlags.None, "A")); // Data is there: it completes first.
        Thread.Sleep(200);
        Expect.Started(port.Receive(second.Server, new byte[4], SocketFlags.None, "B"));
        second.Client.Send([(byte)'B']);
        Thread.Sleep(200);

        Assert.Equal(["A", "B"], Expect.Completions(port, 2).Select(e => e.Context));
    }

    [Theory, BothBackends]
    public void An_accept_that_completed_when_it_started_is_dequeued_before_a_later_receive(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        using TcpPair pair = Ports.AssociatedPair(port, "pair");
        Expect.Started(port.Accept(listener, "first"));
        using Socket firstClient = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        firstClient.Connect(listener.LocalEndPoint!);
        using Socket secondClient = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        secondClient.Connect(listener.LocalEndPoint!);
        // "first" takes one connection; the other waits for the next Accept, accepted and held by the port (io_uring's
        // multishot accept takes both) or in the kernel's listen queue (epoll).
        List<CompletionEntry> served = Expect.All(port, 200);
        Assert.Equal("first", Assert.Single(served).Context);
        served[0].AcceptSocket?.Dispose();

        Expect.Started(port.Accept(listener, "accept")); // Served at once from what is waiting.
        Expect.Started(port.Receive(pair.Server, new byte[4], SocketFlags.None, "receive"));
        pair.Client.Send([1]);
        Thread.Sleep(100);

        List<CompletionEntry> entries = Expect.Completions(port, 2);
        entries[0].AcceptSocket?.Dispose();
        Assert.Equal(["accept", "receive"], entries.Select(e => e.Context));
    }
}
