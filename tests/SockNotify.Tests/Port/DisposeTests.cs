using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Port;

public class DisposeTests
{
    [Theory, BothBackends]
    public void Dispose_wakes_every_waiting_thread_with_PortClosed(CompletionPortBackend backend)
    {
        CompletionPort port = Ports.Create(backend);
        CompletionWaitResult[] results = new CompletionWaitResult[4];
        using CountdownEvent started = new(results.Length);
        Thread[] waiters = Enumerable.Range(0, results.Length).Select(i => new Thread(() =>
        {
            started.Signal();
            results[i] = port.GetQueuedCompletionStatus(new CompletionEntry[4], out _, Timeout.Infinite);
        })).ToArray();
        foreach (Thread waiter in waiters)
        {
            waiter.Start();
        }

        started.Wait();
        Thread.Sleep(100); // Let every thread reach the backend's wait.
        port.Dispose();

        Assert.All(waiters, w => Assert.True(w.Join(Expect.DeadlineMilliseconds)));
        Assert.All(results, r => Assert.Equal(CompletionWaitResult.PortClosed, r));
    }

    [Theory, BothBackends]
    public void Every_call_after_Dispose_throws_ObjectDisposedException_and_Dispose_is_idempotent(CompletionPortBackend backend)
    {
        using TcpPair pair = TcpPair.Create();
        CompletionPort port = Ports.Create(backend);
        port.Register(Items.Enable(pair.Server, null, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        port.Dispose();
        port.Dispose();

        Assert.Throws<ObjectDisposedException>(() => port.GetQueuedCompletionStatus(new CompletionEntry[1], out _, 0));
        Assert.Throws<ObjectDisposedException>(() => port.PostQueuedCompletionStatus(null, 0, null));
        Assert.Throws<ObjectDisposedException>(() => port.ProcessSocketNotifications([Items.Remove(pair.Server)]));
    }

    [Theory, BothBackends]
    public void Dispose_drops_queued_packets_and_leaves_registered_sockets_open(CompletionPortBackend backend)
    {
        using TcpPair pair = TcpPair.Create();
        CompletionPort port = Ports.Create(backend);
        port.Register(Items.Enable(pair.Server, null, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        port.PostQueuedCompletionStatus(null, 1, null);
        port.Dispose();

        pair.Client.Send([42]);
        byte[] buffer = new byte[1];
        pair.Server.Blocking = true;
        Assert.Equal(1, pair.Server.Receive(buffer));
        Assert.Equal(42, buffer[0]);
    }

    [Theory, BothBackends]
    public void After_Dispose_returns_the_kernel_writes_into_no_operation_buffer(CompletionPortBackend backend)
    {
        for (int round = 0; round < 20; round++)
        {
            CompletionPort port = Ports.Create(backend);
            using TcpPair pair = Ports.AssociatedPair(port, "key");
            byte[] buffer = new byte[64];
            Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, null));
            Thread worker = new(() => port.GetQueuedCompletionStatus(new CompletionEntry[4], out _, Timeout.Infinite));
            worker.Start();
            Thread.Sleep(10); // The worker waits in the port: the last one out used to cancel, after Dispose returned.

            port.Dispose();
            pair.Client.Send(Enumerable.Repeat((byte)0xEE, 64).ToArray());
            Thread.Sleep(20);

            Assert.All(buffer, b => Assert.Equal(0, b));
            Assert.True(worker.Join(Expect.DeadlineMilliseconds));
        }
    }

    [Theory, BothBackends]
    public void Disposing_a_port_with_an_undequeued_pooled_completion_frees_the_pool(CompletionPortBackend backend)
    {
        CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Client.Send([1]);
        Thread.Sleep(50);
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, null)); // Data is there; never dequeued.
        Thread.Sleep(100);
        Internal.BufferPool pool = port.Core.Engine.Buffers;

        port.Dispose();

        // Freed at the teardown, when the last call leaves the port: the sweeper's visit may end a moment later.
        Assert.True(SpinWait.SpinUntil(() => pool.IsReleased, TimeSpan.FromSeconds(2)),
            "The pool's slab leaked: a dropped completion kept its buffer lent.");
    }
}
