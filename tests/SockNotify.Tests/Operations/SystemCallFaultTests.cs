using System.Net.Sockets;
using SockNotify.Tests.Support;
using Errno = SockNotify.Interop.Errno;
using Fault = SockNotify.Interop.Fault;
using Faults = SockNotify.Interop.Faults;

namespace SockNotify.Tests.Operations;

/// <summary>
/// The kernel's answers a loopback test never meets on its own, injected (Interop.Faults): interrupted calls, short
/// reads, writes and submits, exhausted memory and descriptors, a refused ring. Under each, nothing is lost or
/// duplicated, and an error the port cannot recover from reaches the caller once, as the operation's result.
/// </summary>
[Collection(nameof(DescriptorSensitive))] // Some injectors see every descriptor.
public sealed class SystemCallFaultTests
{
    [Fact]
    public void A_receive_interrupted_by_a_signal_is_retried()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.Epoll);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Client.Send("abc"u8);
        int calls = 0;
        byte[] buffer = new byte[8];
        using (Faults.Install(Faults.Call.Receive, (int)pair.Server.Handle, () => Interlocked.Increment(ref calls) == 1 ? Errno.EINTR : Fault.None))
        {
            Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, "receive"));
            CompletionEntry entry = Expect.Completion(port);

            Assert.Equal(("receive", SocketError.Success, 3u), (entry.Context, entry.SocketError, entry.BytesTransferred));
        }

        Assert.True(calls >= 2);
        Assert.Equal("abc"u8.ToArray(), buffer[..3]);
    }

    [Fact]
    public void Short_reads_deliver_the_stream_in_order_across_receives()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.Epoll);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[] sent = [.. Enumerable.Range(0, 10).Select(i => (byte)i)];
        pair.Client.Send(sent);
        List<byte> received = [];
        using (Faults.Install(Faults.Call.Receive, (int)pair.Server.Handle, () => Fault.AtMost(3)))
        {
            while (received.Count < sent.Length)
            {
                byte[] buffer = new byte[16];
                Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, null));
                CompletionEntry entry = Expect.Completion(port);
                Assert.InRange(entry.BytesTransferred, 1u, 3u);
                received.AddRange(buffer[..(int)entry.BytesTransferred]);
            }
        }

        Assert.Equal(sent, received);
    }

    [Fact]
    public async Task A_send_the_kernel_takes_in_small_pieces_completes_once_with_every_byte()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.Epoll);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[] payload = [.. Enumerable.Range(0, 200_000).Select(i => (byte)(i * 7))];
        Task<byte[]> reader = TcpPair.ReadOnOwnThread(pair.Client, payload.Length);
        using (Faults.Install((call, fd) => call == Faults.Call.Send && fd == (int)pair.Server.Handle ? Fault.AtMost(1000) : Fault.None))
        {
            Expect.Started(port.Send(pair.Server, payload, SocketFlags.None, "send"));
            CompletionEntry entry = Expect.Completion(port);

            Assert.Equal(("send", SocketError.Success, (uint)payload.Length), (entry.Context, entry.SocketError, entry.BytesTransferred));
        }

        Assert.Equal(payload, await reader.WaitAsync(TimeSpan.FromSeconds(10)));
        Expect.Nothing(port);
    }

    [Theory]
    [InlineData("ENOMEM", SocketError.NoBufferSpaceAvailable)]
    [InlineData("ENOBUFS", SocketError.NoBufferSpaceAvailable)]
    public void A_receive_the_kernel_cannot_serve_fails_once_and_the_next_one_reads_the_data(string errnoName, SocketError expected)
    {
        Errno errno = Enum.Parse<Errno>(errnoName);
        using CompletionPort port = Ports.Create(CompletionPortBackend.Epoll);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Client.Send([42]);
        int calls = 0;
        using (Faults.Install(Faults.Call.Receive, (int)pair.Server.Handle, () => Interlocked.Increment(ref calls) == 1 ? errno : Fault.None))
        {
            Expect.Started(port.Receive(pair.Server, new byte[4], SocketFlags.None, "failed"));
            Assert.Equal(("failed", expected), (Expect.Completion(port) is var failed ? (failed.Context, failed.SocketError) : default));
            Expect.Nothing(port, 20);

            byte[] buffer = new byte[4];
            Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, "next"));
            CompletionEntry next = Expect.Completion(port);
            Assert.Equal(("next", SocketError.Success, 1u, (byte)42), (next.Context, next.SocketError, next.BytesTransferred, buffer[0]));
        }
    }

    [Theory]
    [InlineData("EMFILE", SocketError.TooManyOpenSockets)]
    [InlineData("ENFILE", SocketError.TooManyOpenSockets)]
    [InlineData("ENOBUFS", SocketError.NoBufferSpaceAvailable)]
    public void An_accept_without_descriptors_fails_that_Accept_and_leaves_the_connection_for_the_next(string errnoName, SocketError expected)
    {
        Errno errno = Enum.Parse<Errno>(errnoName);
        using CompletionPort port = Ports.Create(CompletionPortBackend.Epoll);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        int calls = 0;
        using (Faults.Install(Faults.Call.Accept, (int)listener.Handle, () => Interlocked.Increment(ref calls) == 1 ? errno : Fault.None))
        {
            Expect.Started(port.Accept(listener, "refused"));
            CompletionEntry refused = Expect.Completion(port);
            Assert.Equal(("refused", expected), (refused.Context, refused.SocketError));
        }

        Expect.Started(port.Accept(listener, "next"));
        CompletionEntry served = Expect.Completion(port);
        using Socket? accepted = served.AcceptSocket;
        Assert.Equal(("next", SocketError.Success), (served.Context, served.SocketError));
        Assert.Equal(client.LocalEndPoint, accepted!.RemoteEndPoint);
    }

    [Theory]
    [BothBackends]
    public void A_wait_interrupted_by_a_signal_neither_loses_an_entry_nor_returns_early(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        CompletionEntry[] entries = new CompletionEntry[4];
        int interruptions = 0;
        using (Faults.Install((call, _) => call == Faults.Call.EpollWait && Interlocked.Increment(ref interruptions) <= 3 ? Errno.EINTR : Fault.None))
        {
            System.Diagnostics.Stopwatch waited = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(CompletionWaitResult.TimedOut, port.GetQueuedCompletionStatus(entries, out _, 100));
            Assert.True(waited.ElapsedMilliseconds >= 100, $"Returned after {waited.ElapsedMilliseconds} ms.");
            Assert.True(interruptions > 3, $"Only {interruptions} waits were made.");

            Interlocked.Exchange(ref interruptions, 0);
            port.PostQueuedCompletionStatus("post", 7, null);
            CompletionEntry posted = Expect.Completion(port);
            Assert.Equal(("post", 7u), (posted.CompletionKey, posted.BytesTransferred));
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void A_kernel_that_takes_fewer_submissions_than_asked_still_completes_every_operation_once(int atMost)
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.IoUring);
        TcpPair[] pairs = [.. Enumerable.Range(0, 8).Select(i => Ports.AssociatedPair(port, i))];
        try
        {
            int enters = 0;
            using (Faults.Install(Faults.Call.IoUringEnter, ((Backends.Linux.IoUring.IoUringEngine)port.Core.Engine).RingDescriptor,
                () => { Interlocked.Increment(ref enters); return Fault.AtMost(atMost); }))
            {
                foreach (TcpPair pair in pairs)
                {
                    Expect.Started(port.Receive(pair.Server, new byte[4], SocketFlags.None, pair));
                    pair.Client.Send([1, 2]);
                }

                List<CompletionEntry> entries = Expect.Completions(port, pairs.Length);
                Assert.Equal(pairs.Length, entries.Select(e => e.Context).Distinct().Count());
                Assert.All(entries, e => Assert.Equal((SocketError.Success, 2u), (e.SocketError, e.BytesTransferred)));
                Expect.Nothing(port);
            }

            Assert.True(enters > 0);
        }
        finally
        {
            Array.ForEach(pairs, pair => pair.Dispose());
        }
    }

    [Theory]
    [InlineData("ENOMEM")] // RLIMIT_MEMLOCK too small for the rings (before Linux 5.12)
    [InlineData("EPERM")] // io_uring disabled by sysctl kernel.io_uring_disabled, or by seccomp
    [InlineData("ENOSYS")] // a kernel without io_uring
    public void A_refused_ring_falls_back_to_epoll_unless_io_uring_was_asked_for(string errnoName)
    {
        Errno errno = Enum.Parse<Errno>(errnoName);
        using (Faults.Install((call, _) => call == Faults.Call.IoUringSetup ? errno : Fault.None))
        {
            using CompletionPort automatic = new(new CompletionPortOptions { Backend = CompletionPortBackend.Automatic });
            Assert.Equal(CompletionPortBackend.Epoll, automatic.Backend);

            PlatformNotSupportedException refused = Assert.Throws<PlatformNotSupportedException>(
                () => new CompletionPort(new CompletionPortOptions { Backend = CompletionPortBackend.IoUring }));
            Assert.Contains("io_uring_setup", refused.Message, StringComparison.Ordinal);
        }
    }
}
