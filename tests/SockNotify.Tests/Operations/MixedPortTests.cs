using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

public class MixedPortTests
{
    [Theory, BothBackends]
    public void A_socket_taking_the_number_of_a_closed_socket_of_a_port_being_disposed_leaves_that_port_alone(CompletionPortBackend backend)
    {
        using Socket listener = Loopback.Listener();
        for (int round = 0; round < 100; round++)
        {
            CompletionPort first = Ports.Create(backend);
            using CompletionPort second = Ports.Create(backend);
            Socket old = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            first.Associate(old, "old");
            Expect.Started(first.Connect(old, listener.LocalEndPoint!, null)); // Something for first's teardown to do.
            old.Dispose(); // Its association waits for first's sweep, holding the number in the owner table.
            Thread disposer = new(first.Dispose);
            disposer.Start();

            // Likely the same number: the claim finds first's stale association and ends it, racing first's disposal,
            // which must then neither be written to by second nor fail it.
            using Socket reuser = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            second.Associate(reuser, "new");
            Assert.True(disposer.Join(Expect.DeadlineMilliseconds));

            Expect.Started(second.Connect(reuser, listener.LocalEndPoint!, "connect"));
            CompletionEntry connected = Expect.Completion(second);
            Assert.Equal(("new", "connect", SocketError.Success), (connected.CompletionKey, connected.Context, connected.SocketError));
        }
    }

    [Theory, BothBackends]
    public void One_port_delivers_notifications_completions_and_posts_together(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair notified = TcpPair.Create();
        using TcpPair associated = Ports.AssociatedPair(port, "completion");
        SocketNotifyRegistration enable = new()
        {
            Socket = notified.Server, CompletionKey = "notification", Operation = SocketNotifyOperation.Enable,
            EventFilter = SocketNotifyEvents.In, TriggerFlags = SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot,
        };
        port.ProcessSocketNotifications(ref enable);
        Assert.Equal(SocketNotifyResult.Success, enable.RegistrationResult);
        Expect.Started(port.Receive(associated.Server, new byte[8], SocketFlags.None, "receive"));

        notified.Client.Send([1]);
        associated.Client.Send([2]);
        port.PostQueuedCompletionStatus("post", 7, "posted");
        List<CompletionEntry> entries = Expect.All(port, 200);

        Assert.Single(entries, e => (string?)e.CompletionKey == "notification" && e.Events == SocketNotifyEvents.In);
        Assert.Single(entries, e => (string?)e.CompletionKey == "completion" && e.BytesTransferred == 1);
        Assert.Single(entries, e => (string?)e.CompletionKey == "post" && e.BytesTransferred == 7);
        Assert.Equal(3, entries.Count);
    }

    [Fact]
    public void Tiny_rings_lose_no_completion_when_the_kernel_overflows_them()
    {
        // Two submission and four completion slots for 200 operations that complete at once: the kernel must hold
        // completions back (IORING_FEAT_NODROP) and the port must collect them later.
        using CompletionPort port = new(new CompletionPortOptions
        {
            Backend = CompletionPortBackend.IoUring,
            RingSubmissionEntries = 2,
            RingCompletionEntries = 4,
        });
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[] data = new byte[8];
        for (int i = 0; i < 200; i++)
        {
            Expect.Started(port.Send(pair.Server, data, SocketFlags.None, i));
        }

        List<CompletionEntry> entries = Expect.Completions(port, 200);

        Assert.Equal(Enumerable.Range(0, 200), entries.Select(e => (int)e.Context!).Order());
        Assert.All(entries, e => Assert.Equal(8u, e.BytesTransferred));
        Expect.Nothing(port, 50);
    }
}
