using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

/// <summary>Defects a review found, each kept from coming back.</summary>
public class OperationRegressionTests
{
    [Theory, BothBackends]
    public async Task Large_sends_started_together_arrive_whole_and_in_order(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Server.SendBufferSize = 16 * 1024;
        byte[][] parts = [.. Enumerable.Range(1, 3).Select(i => Enumerable.Repeat((byte)i, 1024 * 1024).ToArray())];
        foreach (byte[] part in parts)
        {
            Expect.Started(port.Send(pair.Server, part, SocketFlags.None, null));
        }

        Task<byte[]> reader = TcpPair.ReadOnOwnThread(pair.Client, 3 * 1024 * 1024);
        List<CompletionEntry> sent = Expect.Completions(port, 3);
        byte[] received = await reader;

        Assert.Equal(parts.SelectMany(p => p), received); // Interleaved parts would switch bytes more than twice.
        Assert.All(sent, e => Assert.Equal(1024u * 1024, e.BytesTransferred));
    }

    [Theory, BothBackends]
    public void A_pooled_receive_cancelled_before_the_kernel_found_no_buffer_completes_aborted(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend, pooledBufferCount: 1, pooledBufferSize: 64);
        using TcpPair first = Ports.AssociatedPair(port, "first");
        using TcpPair second = Ports.AssociatedPair(port, "second");
        CompletionEntry lent = Ports.LendABuffer(port, first);
        second.Client.Send([2]);
        Thread.Sleep(20);

        Expect.Started(port.ReceivePooled(second.Server, SocketFlags.None, "cancelled"));
        Assert.True(port.CancelIo(second.Server));
        CompletionEntry cancelled = Expect.Completion(port);
        port.ReturnBuffer(lent);

        Assert.Equal("cancelled", cancelled.Context);
        Assert.Equal(SocketError.OperationAborted, cancelled.SocketError);
        Expect.Nothing(port, 100);
        Assert.Equal(0, port.OperationsInUse);
    }

    [Theory, BothBackends]
    public void A_returned_buffer_resumes_a_parked_receive_past_stale_ones(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend, pooledBufferCount: 1, pooledBufferSize: 64);
        using TcpPair first = Ports.AssociatedPair(port, "first");
        using TcpPair cancelled = Ports.AssociatedPair(port, "cancelled");
        using TcpPair waiting = Ports.AssociatedPair(port, "waiting");
        CompletionEntry lent = Ports.LendABuffer(port, first);
        Expect.Started(port.ReceivePooled(cancelled.Server, SocketFlags.None, null));
        cancelled.Client.Send([2]);
        Expect.Nothing(port, 100);
        port.CancelIo(cancelled.Server);
        Assert.Equal(SocketError.OperationAborted, Expect.Completion(port).SocketError);
        Expect.Started(port.ReceivePooled(waiting.Server, SocketFlags.None, "waiting"));
        waiting.Client.Send([3]);
        Expect.Nothing(port, 100);

        port.ReturnBuffer(lent);
        CompletionEntry resumed = Expect.Completion(port, 1000);

        Assert.Equal("waiting", resumed.Context);
        Assert.Equal([3], resumed.PooledData.ToArray());
        port.ReturnBuffer(resumed);
    }

    [Theory, BothBackends]
    public void Completions_one_waiter_left_behind_wake_another_waiter(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair a = Ports.AssociatedPair(port, "a");
        using TcpPair b = Ports.AssociatedPair(port, "b");
        using CountdownEvent delivered = new(2);
        using ManualResetEventSlim release = new();
        Thread[] workers = [.. Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            CompletionEntry[] one = new CompletionEntry[1];
            if (port.GetQueuedCompletionStatus(one, out _, Expect.DeadlineMilliseconds) == CompletionWaitResult.Success)
            {
                delivered.Signal();
                release.Wait(Expect.DeadlineMilliseconds); // Hold the entry, as a handler that waits for the other completion would.
            }
        }))];
        Array.ForEach(workers, w => w.Start());
        Thread.Sleep(50); // Both workers sleep in the port.

        // Both receives are started by a thread that then stays busy in user code, so the kernel finishes them
        // together at its next tick: two completions in one batch, announced by one wake.
        Thread submitter = new(() =>
        {
            port.Receive(a.Server, new byte[8], SocketFlags.None, null);
            port.Receive(b.Server, new byte[8], SocketFlags.None, null);
            SpinWait.SpinUntil(() => false, 200);
        });
        submitter.Start();
        Thread.Sleep(20);
        a.Client.Send([1]);
        b.Client.Send([2]);
        submitter.Join();
        bool bothDelivered = delivered.Wait(1000);
        release.Set();

        Assert.All(workers, w => Assert.True(w.Join(Expect.DeadlineMilliseconds)));
        Assert.True(bothDelivered, "The second completion waited for the first thread to come back.");
    }

    [Fact]
    public void Completions_the_kernel_held_back_in_its_overflow_list_wake_a_sleeping_waiter()
    {
        // Four completion slots for twenty completions: sixteen wait in the kernel's overflow list, which a waiter that
        // reaped the ring empty must count as left behind.
        using CompletionPort port = new(new CompletionPortOptions
        {
            Backend = CompletionPortBackend.IoUring,
            RingSubmissionEntries = 4,
            RingCompletionEntries = 4,
        });
        TcpPair[] pairs = [.. Enumerable.Range(0, 20).Select(i => Ports.AssociatedPair(port, i))];
        try
        {
            using CountdownEvent delivered = new(2);
            using ManualResetEventSlim release = new();
            Thread[] workers = [.. Enumerable.Range(0, 2).Select(_ => new Thread(() =>
            {
                if (port.GetQueuedCompletionStatus(new CompletionEntry[4], out _, Expect.DeadlineMilliseconds) == CompletionWaitResult.Success)
                {
                    delivered.Signal();
                    release.Wait(Expect.DeadlineMilliseconds); // Hold on, as a busy handler would.
                }
            }))];
            Array.ForEach(workers, w => w.Start());
            Thread.Sleep(50);

            // Started by a thread that stays busy, so that the kernel finishes all twenty in one batch.
            Thread submitter = new(() =>
            {
                foreach (TcpPair pair in pairs)
                {
                    port.Receive(pair.Server, new byte[8], SocketFlags.None, null);
                }

                SpinWait.SpinUntil(() => false, 200);
            });
            submitter.Start();
            Thread.Sleep(20);
            Array.ForEach(pairs, pair => pair.Client.Send([1]));
            submitter.Join();
            bool bothDelivered = delivered.Wait(1000);
            release.Set();

            Assert.All(workers, w => Assert.True(w.Join(Expect.DeadlineMilliseconds)));
            Assert.True(bothDelivered, "Completions in the overflow list waited for the first thread to come back.");
        }
        finally
        {
            Array.ForEach(pairs, pair => pair.Dispose());
        }
    }

    [Fact]
    public void A_port_dropped_without_Dispose_can_be_collected()
    {
        WeakReference dropped = AssociateAndDrop();
        for (int i = 0; i < 10 && dropped.IsAlive; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            Thread.Sleep(PortSweeperPeriod);
        }

        Assert.False(dropped.IsAlive, "The process's sweeper keeps a port nobody holds alive.");
    }

    private static readonly int PortSweeperPeriod = (int)Internal.PortSweeper.Period.TotalMilliseconds;

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static WeakReference AssociateAndDrop()
    {
        CompletionPort port = Ports.Create(CompletionPortBackend.Epoll);
        using TcpPair pair = Ports.AssociatedPair(port, "key"); // The port joins the sweeper with its first association.
        port.CloseSocket(pair.Server);
        return new WeakReference(port);
    }

    [Theory, BothBackends]
    public void Cancelling_the_first_receive_lets_the_next_one_take_data_that_already_arrived(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend, pooledBufferCount: 1, pooledBufferSize: 64);
        using TcpPair first = Ports.AssociatedPair(port, "first");
        using TcpPair pair = Ports.AssociatedPair(port, "pair");
        CompletionEntry lent = Ports.LendABuffer(port, first);
        object pooled = new();
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, pooled));
        Expect.Started(port.Receive(pair.Server, new byte[8], SocketFlags.None, "plain"));
        pair.Client.Send([7]);
        Expect.Nothing(port, 100); // The pooled receive waits for a buffer; the plain one waits behind it.

        port.CancelIo(pair.Server, pooled);
        List<CompletionEntry> entries = Expect.Completions(port, 2);
        port.ReturnBuffer(lent);

        Assert.Equal(SocketError.OperationAborted, entries.Single(e => e.Context == pooled).SocketError);
        Assert.Equal(1u, entries.Single(e => (e.Context as string) == "plain").BytesTransferred);
    }

    [Theory, BothBackends]
    public void Pooled_data_stays_readable_after_the_port_is_disposed(CompletionPortBackend backend)
    {
        CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, null));
        pair.Client.Send("kept"u8);
        CompletionEntry entry = Expect.Completion(port);

        port.Dispose();

        Assert.Equal("kept"u8.ToArray(), entry.PooledData.ToArray());
        port.ReturnBuffer(entry); // Releases the pool's memory, the last buffer being back.
        Assert.Throws<InvalidOperationException>(() => port.ReturnBuffer(entry));
    }
}

[Collection(nameof(DescriptorSensitive))]
public class OperationDisposalLeakTests
{
    [Theory, BothBackends]
    public void Disposing_a_port_closes_connections_accepted_for_no_one(CompletionPortBackend backend)
    {
        using Socket listener = Loopback.Listener();
        List<Socket> clients = [];
        Descriptors before;
        {
            using CompletionPort warm = Ports.Create(backend);
        }

        before = Descriptors.Snapshot();
        using (CompletionPort port = Ports.Create(backend))
        {
            port.Associate(listener, "listener");
            Expect.Started(port.Accept(listener, null));
            for (int i = 0; i < 70; i++)
            {
                Socket client = new(listener.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                client.Connect(listener.LocalEndPoint!);
                clients.Add(client);
            }

            Expect.Completion(port).AcceptSocket!.Dispose();
            Thread.Sleep(100); // Let the multishot accept take connections no Accept waits for.
        }

        // Only the clients' descriptors are new: the held connections were closed with the port.
        clients.ForEach(c => c.Dispose());
        before.AssertUnchanged();
    }

}
