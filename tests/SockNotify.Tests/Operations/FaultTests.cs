using System.Diagnostics;
using System.Net.Sockets;
using SockNotify.Backends.Linux.IoUring;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

/// <summary>io_uring under injected faults (Interop.Faults): the kernel refusing to take submissions for a while.</summary>
[Collection(nameof(DescriptorSensitive))] // Alone, so that a closed descriptor's number goes where the test puts it.
public class FaultTests
{
    [Fact]
    public void An_entry_left_unsubmitted_never_reaches_a_socket_that_reuses_its_descriptor()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.IoUring);
        for (int attempt = 1; ; attempt++)
        {
            using TcpPair first = Ports.AssociatedPair(port, "first");
            using TcpPair second = TcpPair.Create();
            second.Client.Send([(byte)'B']);
            byte[] buffer = new byte[16];
            int number;
            int reused;
            using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () => Interop.Errno.EBUSY)) // The kernel takes no entry for now.
            {
                Expect.Started(port.Receive(first.Server, buffer, SocketFlags.None, "first"));
                number = (int)first.Server.Handle;
                first.Server.Dispose();
                reused = Libc.DupAtOrAbove(second.Server.Handle, number); // The number now names the second connection.
            }

            try
            {
                if (reused != number)
                {
                    // The port's sweep was entering the ring, holding the handle, when it was disposed: it closed just
                    // after, and the number went elsewhere. Its receive ends all the same; set the scene again.
                    Assert.True(attempt < 10, $"descriptor {number} was not free after its socket's dispose, {attempt} times");
                    Assert.Equal("first", Expect.Completion(port).Context);
                    continue;
                }

                CompletionEntry entry = Expect.Completion(port);

                Assert.Equal(("first", SocketError.OperationAborted), (entry.Context, entry.SocketError));
                Assert.All(buffer, b => Assert.Equal(0, b));
                Assert.Equal(1, second.Server.Available); // Its byte is still its own.
                return;
            }
            finally
            {
                Libc.Close(reused);
            }
        }
    }

    [Fact]
    public async Task CloseSocket_during_another_threads_submission_still_ends_the_connection_with_FIN()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.IoUring);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        using ManualResetEventSlim entered = new();
        using ManualResetEventSlim release = new();
        int enters = 0;
        Task<SocketError> closed;
        using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () =>
        {
            if (Interlocked.Increment(ref enters) == 1)
            {
                entered.Set();
                release.Wait(TimeSpan.FromSeconds(10)); // An enter that takes its time, holding the handles it submits.
            }

            return Interop.Fault.None;
        }))
        {
            Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));
            Task submitter = Task.Factory.StartNew(() => Expect.Completion(port), TaskCreationOptions.LongRunning);
            Assert.True(entered.Wait(TimeSpan.FromSeconds(5)), "No enter was made.");
            closed = Task.Run(() =>
            {
                port.CloseSocket(pair.Server);
                return SocketError.Success;
            });
            await Task.Delay(100);
            release.Set();
            await closed.WaitAsync(TimeSpan.FromSeconds(5));
            await submitter.WaitAsync(TimeSpan.FromSeconds(5));
        }

        pair.Client.ReceiveTimeout = 2000;
        Assert.Equal(0, pair.Client.Receive(new byte[1])); // FIN: a reset would throw ConnectionReset here.
    }

    [Fact]
    public void CloseSocket_retries_a_refused_submission_and_still_closes_in_order()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.IoUring);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));
        Expect.Nothing(port, 20); // Submitted by that wait.
        int refused = 0;
        using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () => Interlocked.Increment(ref refused) <= 5 ? Interop.Errno.EBUSY : 0))
        {
            port.CloseSocket(pair.Server);
        }

        Assert.True(refused > 5, $"Only {refused} enters were made: the refused submission was not retried.");
        Assert.Equal(SocketError.OperationAborted, Expect.Completion(port).SocketError);
        pair.Client.ReceiveTimeout = 1000;
        Assert.Equal(0, pair.Client.Receive(new byte[1]));
    }

    [Fact]
    public void Dispose_with_a_full_submission_queue_still_cancels_and_returns_promptly()
    {
        CompletionPort port = new(new CompletionPortOptions
        {
            Backend = CompletionPortBackend.IoUring,
            RingSubmissionEntries = 2,
            RingCompletionEntries = 4,
        });
        TcpPair[] pairs = [.. Enumerable.Range(0, 3).Select(i => Ports.AssociatedPair(port, i))];
        try
        {
            Expect.Started(port.Receive(pairs[0].Server, new byte[8], SocketFlags.None, null));
            Expect.Nothing(port, 20); // In the kernel.
            int refused = 0;
            using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () => Interlocked.Increment(ref refused) <= 20 ? Interop.Errno.EBUSY : 0))
            {
                Expect.Started(port.Receive(pairs[1].Server, new byte[8], SocketFlags.None, null));
                Expect.Started(port.Receive(pairs[2].Server, new byte[8], SocketFlags.None, null)); // The queue is full.
                Stopwatch disposal = Stopwatch.StartNew();
                port.Dispose();
                disposal.Stop();

                Assert.True(disposal.Elapsed < TimeSpan.FromSeconds(2), $"Dispose took {disposal.Elapsed}: no cancel was queued.");
            }

            Assert.True(port.Core.Engine.ReleasedEverything);
        }
        finally
        {
            Array.ForEach(pairs, pair => pair.Dispose());
        }
    }

    [Fact]
    public void A_multishot_accept_that_cannot_be_armed_again_fails_every_waiting_Accept()
    {
        using CompletionPort port = new(new CompletionPortOptions
        {
            Backend = CompletionPortBackend.IoUring,
            RingSubmissionEntries = 2,
            RingCompletionEntries = 8,
        });
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        using TcpPair x = Ports.AssociatedPair(port, "x");
        using TcpPair y = Ports.AssociatedPair(port, "y");
        foreach (string accept in (string[])["a1", "a2", "a3"])
        {
            Expect.Started(port.Accept(listener, accept));
        }

        Expect.Nothing(port, 20); // The multishot accept is in the kernel.
        List<CompletionEntry> entries;
        using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () => Interop.Errno.EBUSY)) // From now on the kernel takes nothing.
        {
            Expect.Started(port.Receive(x.Server, new byte[4], SocketFlags.None, "x"));
            Expect.Started(port.Receive(y.Server, new byte[4], SocketFlags.None, "y")); // The submission queue is full.
            listener.Shutdown(SocketShutdown.Both); // Ends the multishot accept with an error.

            // Its last completion fails one Accept; arming another would need a free entry, and there is none.
            entries = Expect.Completions(port, 3);
        }

        Assert.Equal(["a1", "a2", "a3"], entries.Select(e => (string)e.Context!).Order());
        Assert.All(entries, e => Assert.NotEqual(SocketError.Success, e.SocketError));
        Assert.Equal(2, entries.Count(e => e.SocketError == SocketError.NoBufferSpaceAvailable));
    }

    /// <summary>
    /// A start that took effect must not throw: an enter the kernel refuses (here ENOMEM once) leaves its entry for the
    /// next wait, and the operation completes as if nothing had happened.
    /// </summary>
    [Fact]
    public async Task A_start_whose_submission_the_kernel_refuses_returns_pending_and_completes()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.IoUring);
        using TcpPair pair = Ports.AssociatedPair(port, "pair");
        using Barrier sleeping = new(2);
        Task<CompletionEntry> dequeued = Task.Factory.StartNew(() =>
        {
            sleeping.SignalAndWait();
            return Expect.Completion(port); // A thread asleep in the port: the start submits at once.
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        sleeping.SignalAndWait();
        Thread.Sleep(100);

        int enters = 0;
        using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () => Interlocked.Increment(ref enters) == 1 ? Interop.Errno.ENOMEM : 0))
        {
            Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));
        }

        pair.Client.Send("hello"u8);
        CompletionEntry entry = await dequeued;
        Assert.True(enters >= 1, "the fault was not met");
        Assert.Equal(("receive", SocketError.Success, 5u), (entry.Context, entry.SocketError, entry.BytesTransferred));
    }

    /// <summary>
    /// An operation the kernel cancelled unasked (its submitting thread exited) is submitted again; when that cannot be
    /// (the ring stays full) it completes with the reason and no bytes, never with the cancellation's negative result.
    /// </summary>
    [Fact]
    public void An_operation_cancelled_unasked_that_cannot_go_in_again_completes_with_the_reason()
    {
        using CompletionPort port = SmallRing();
        using TcpPair receiving = Ports.AssociatedPair(port, "receiving");
        using TcpPair x = Ports.AssociatedPair(port, "x");
        using TcpPair y = Ports.AssociatedPair(port, "y");
        Expect.Started(port.Receive(receiving.Server, new byte[16], SocketFlags.None, "receive"));
        ExitingThread.Run(() => Expect.Nothing(port, 50)); // Submits the receive, then exits.
        using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () => Interop.Errno.EBUSY))
        {
            Expect.Started(port.Receive(x.Server, new byte[4], SocketFlags.None, "x")); // Two entries: the queue is full.
            Expect.Started(port.Receive(y.Server, new byte[4], SocketFlags.None, "y"));
            receiving.Client.Send("seven!!"u8);

            CompletionEntry entry = Expect.Completion(port);
            Assert.Equal(("receive", SocketError.NoBufferSpaceAvailable, 0u), (entry.Context, entry.SocketError, entry.BytesTransferred));
        }
    }

    /// <summary>The same for a send that went in part: it reports why the rest could not follow, with the count that went.</summary>
    [Fact]
    public void A_send_cancelled_unasked_after_part_went_whose_rest_cannot_go_in_reports_it()
    {
        using CompletionPort port = SmallRing();
        using TcpPair x = Ports.AssociatedPair(port, "x");
        using TcpPair y = Ports.AssociatedPair(port, "y");
        using TcpPair pair = Ports.AssociatedPair(port, "pair");
        pair.Server.SendBufferSize = 64 * 1024;
        pair.Client.ReceiveBufferSize = 64 * 1024;
        byte[] data = new byte[1024 * 1024];
        Expect.Started(port.Send(pair.Server, data, SocketFlags.None, "big"));
        ExitingThread.Run(() => Expect.Nothing(port, 50)); // Submits the send, part goes in, then it exits.
        using (Interop.Faults.Install(Interop.Faults.Call.IoUringEnter, RingOf(port), () => Interop.Errno.EBUSY))
        {
            Expect.Started(port.Receive(x.Server, new byte[4], SocketFlags.None, "x"));
            Expect.Started(port.Receive(y.Server, new byte[4], SocketFlags.None, "y"));
            // Room in the socket (read on, as one read may free too little to wake the send): the kernel ends the
            // orphaned send with what went. The reader ends when the pair is disposed, or after 10 s without data.
            pair.Client.ReceiveTimeout = 10_000;
            _ = Task.Factory.StartNew(() =>
            {
                byte[] sink = new byte[64 * 1024];
                try
                {
                    while (pair.Client.Receive(sink) > 0)
                    {
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            CompletionEntry entry = Expect.Completion(port);
            Assert.Equal(("big", SocketError.NoBufferSpaceAvailable), (entry.Context, entry.SocketError));
            Assert.InRange(entry.BytesTransferred, 1u, (uint)data.Length - 1);
        }
    }

    private static CompletionPort SmallRing() => new(new CompletionPortOptions
    {
        Backend = CompletionPortBackend.IoUring,
        RingSubmissionEntries = 2,
        RingCompletionEntries = 8,
    });

    private static int RingOf(CompletionPort port) => ((IoUringEngine)port.Core.Engine).RingDescriptor;
}
