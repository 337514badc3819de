using System.Diagnostics;
using System.Net.Sockets;
using SockNotify.Tests.Support;
using Errno = SockNotify.Interop.Errno;
using Fault = SockNotify.Interop.Fault;
using Faults = SockNotify.Interop.Faults;

namespace SockNotify.Tests.Operations;

/// <summary>
/// Accepted connections and reaped completions under injected faults: .NET refusing to wrap an accepted descriptor, a
/// wrap that takes long, an exception in the middle of a batch of completions. The injectors see every descriptor, so
/// these tests run alone.
/// </summary>
[Collection(nameof(DescriptorSensitive))]
public sealed class AcceptFaultTests
{
    [Theory]
    [BothBackends]
    public void An_accepted_descriptor_NET_cannot_wrap_fails_that_Accept_only_and_is_closed(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        Descriptors before = Descriptors.Snapshot();
        int refusals = 0;
        CompletionEntry refused;
        using (Faults.Install((call, _) => call == Faults.Call.WrapAccepted && Interlocked.Increment(ref refusals) == 1 ? Errno.EMFILE : Fault.None))
        {
            Expect.Started(port.Accept(listener, "refused"));
            using (Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                client.Connect(listener.LocalEndPoint!);
                refused = Expect.Completion(port); // An error entry, not an exception out of the dequeue.
            }
        }

        Assert.Equal(("refused", SocketError.TooManyOpenSockets), (refused.Context, refused.SocketError));
        Assert.Null(refused.AcceptSocket);
        before.AssertUnchanged(); // The accepted descriptor was closed at once, not left to a finalizer.

        Expect.Started(port.Accept(listener, "next"));
        using Socket next = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        next.Connect(listener.LocalEndPoint!);
        CompletionEntry served = Expect.Completion(port);
        using Socket? accepted = served.AcceptSocket;
        Assert.Equal(("next", SocketError.Success), (served.Context, served.SocketError));
        Assert.Equal(next.LocalEndPoint, accepted!.RemoteEndPoint);
    }

    [Theory]
    [BothBackends]
    public void A_wrap_that_throws_closes_its_descriptor_once_and_loses_no_other_entry(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        Descriptors before = Descriptors.Snapshot();
        Expect.Started(port.Accept(listener, "accept"));
        using (Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            client.Connect(listener.LocalEndPoint!);
            port.PostQueuedCompletionStatus("post", 1, null);
            List<object?> delivered = [];
            using (Faults.Install((call, _) => call == Faults.Call.WrapAccepted ? throw new InjectedFaultException() : Fault.None))
            {
                Assert.Throws<InjectedFaultException>(() => DequeueUntilAccepted(port, delivered));
            }

            delivered.AddRange(Expect.All(port).Select(e => e.CompletionKey));
            Assert.Equal(["post"], delivered); // Once, whether it came before the fault or was put back by it.
        }

        before.AssertUnchanged();
    }

    /// <summary>Dequeues, noting what comes, until the Accept is delivered (or the call throws).</summary>
    private static void DequeueUntilAccepted(CompletionPort port, List<object?> delivered)
    {
        CompletionEntry[] entries = new CompletionEntry[8];
        Stopwatch deadline = Stopwatch.StartNew();
        while (deadline.ElapsedMilliseconds < 5000)
        {
            port.GetQueuedCompletionStatus(entries, out int count, 100);
            delivered.AddRange(entries.Take(count).Select(e => e.CompletionKey));
            if (entries.Take(count).Any(e => "accept".Equals(e.Context)))
            {
                return;
            }
        }
    }

    [Theory]
    [BothBackends]
    public async Task A_thread_wrapping_an_accepted_socket_holds_up_no_other_completion(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        using TcpPair pair = Ports.AssociatedPair(port, "pair");
        using ManualResetEventSlim wrapping = new();
        using ManualResetEventSlim release = new();
        using var injector = Faults.Install((call, _) =>
        {
            if (call == Faults.Call.WrapAccepted)
            {
                wrapping.Set();
                release.Wait(TimeSpan.FromSeconds(10)); // A slow wrap, on the thread that dequeued the Accept.
            }

            return Fault.None;
        });

        Expect.Started(port.Accept(listener, "accept"));
        Task<CompletionEntry> acceptor = Task.Factory.StartNew(() => Expect.Completion(port), TaskCreationOptions.LongRunning);
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        Assert.True(wrapping.Wait(TimeSpan.FromSeconds(5)), "The Accept was not dequeued.");
        try
        {
            Expect.Started(port.Receive(pair.Server, new byte[4], SocketFlags.None, "receive"));
            pair.Client.Send([1]);
            Task<CompletionEntry> receiver = Task.Factory.StartNew(() => Expect.Completion(port), TaskCreationOptions.LongRunning);

            // Times out if the receive waits for the wrap of another connection.
            CompletionEntry received = await receiver.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.Equal(("receive", 1u), (received.Context, received.BytesTransferred));
        }
        finally
        {
            release.Set();
        }

        CompletionEntry served = await acceptor;
        using Socket? accepted = served.AcceptSocket;
        Assert.Equal(("accept", SocketError.Success), (served.Context, served.SocketError));
        Assert.NotNull(accepted);
    }

    [Fact]
    public void An_exception_after_a_completion_was_handled_surfaces_once_and_the_completion_is_delivered_once()
    {
        using CompletionPort port = Ports.Create(CompletionPortBackend.IoUring);
        using TcpPair a = Ports.AssociatedPair(port, "a");
        using TcpPair b = Ports.AssociatedPair(port, "b");
        Expect.Started(port.Receive(a.Server, new byte[4], SocketFlags.None, "a"));
        Expect.Started(port.Receive(b.Server, new byte[4], SocketFlags.None, "b"));
        Expect.Nothing(port, 20); // Both in the kernel.
        int handled = 0;
        using (Faults.Install(Faults.Call.HandleCompletion, ((Backends.Linux.IoUring.IoUringEngine)port.Core.Engine).RingDescriptor,
            () => Interlocked.Increment(ref handled) == 1 ? throw new InjectedFaultException() : Fault.None))
        {
            a.Client.Send([1]);
            b.Client.Send([2, 2]);
            CompletionEntry[] entries = new CompletionEntry[8];
            Assert.Throws<InjectedFaultException>(() => port.GetQueuedCompletionStatus(entries, out _, 5000));

            // Whatever that dequeue had taken comes next, and the kernel's entries it had consumed are never handled again.
            List<CompletionEntry> delivered = Expect.Completions(port, 2);
            Assert.Equal([("a", 1u), ("b", 2u)], delivered.Select(e => ((string)e.Context!, e.BytesTransferred)).Order());
            Expect.Nothing(port);
        }
    }

    private sealed class InjectedFaultException : Exception;
}
