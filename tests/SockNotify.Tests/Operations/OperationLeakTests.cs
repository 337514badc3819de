using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

[Collection(nameof(DescriptorSensitive))]
public class OperationLeakTests
{
    [Theory, BothBackends]
    public void Ten_thousand_connect_echo_close_cycles_leave_descriptors_operations_and_memory_flat(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        byte[] buffer = new byte[16];
        Cycle(port, listener, buffer, 5000); // Warm up: tables, caches and the runtime reach their working size.
        Descriptors before = Descriptors.Snapshot();

        Cycle(port, listener, buffer, 5000);
        long heapHalfway = SweptHeap(port);
        Cycle(port, listener, buffer, 5000);
        long growth = SweptHeap(port) - heapHalfway;

        Assert.Equal(0, port.OperationsInUse);
        before.AssertUnchanged();
        // Under 10 bytes a cycle, smaller than any object: nothing is kept per connection. (The first thousands of
        // cycles in a process grow runtime caches once, which is why the growth is taken over the second half.)
        Assert.True(growth < 50_000, $"The heap grew by {growth} bytes over 5,000 cycles.");
    }

    [Theory, BothBackends]
    public void A_steady_echo_allocates_nothing_per_operation(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[] buffer = new byte[64];
        byte[] message = new byte[64];
        CompletionEntry[] entries = new CompletionEntry[4];
        int completed = 0;
        Echo(100); // Warm up: JIT, the operation table, the queue's segments.
        completed = 0;

        long before = GC.GetAllocatedBytesForCurrentThread();
        Echo(1000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(3000, completed); // Every operation really ran: a loop that did nothing allocates nothing too.
        Assert.Equal(0, allocated);

        void Echo(int count)
        {
            for (int i = 0; i < count; i++)
            {
                port.Receive(pair.Server, buffer, SocketFlags.None, null);
                pair.Client.Send(message);
                Dequeue();
                port.Send(pair.Server, buffer, SocketFlags.None, null);
                Dequeue();
                pair.Client.Receive(message);
                port.ReceivePooled(pair.Server, SocketFlags.None, null);
                pair.Client.Send(message);
                Dequeue();
                port.ReturnBuffer(entries[0]);
            }
        }

        void Dequeue()
        {
            if (port.GetQueuedCompletionStatus(entries, out int count, Expect.DeadlineMilliseconds) == CompletionWaitResult.Success
                && count == 1 && entries[0].SocketError == SocketError.Success && entries[0].BytesTransferred > 0)
            {
                completed++;
            }
        }
    }

    /// <summary>
    /// The heap once the port's sweep has ended the associations of the sockets the cycles disposed (the last sweep
    /// period's worth are still held until then, hundreds of bytes each), so that two readings compare like with like.
    /// </summary>
    private static long SweptHeap(CompletionPort port)
    {
        Assert.True(SpinWait.SpinUntil(() => port.RegistrationCount == 1, 1000), $"{port.RegistrationCount} associations left.");
        return GC.GetTotalMemory(forceFullCollection: true);
    }

    private static void Cycle(CompletionPort port, Socket listener, byte[] buffer, int count)
    {
        for (int i = 0; i < count; i++)
        {
            Expect.Started(port.Accept(listener, null));
            using Socket client = new(listener.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            client.Connect(listener.LocalEndPoint!);
            CompletionEntry accepted = Expect.Completion(port);
            using Socket server = accepted.AcceptSocket!;
            port.Associate(server, i);
            Expect.Started(port.Receive(server, buffer, SocketFlags.None, null));
            client.Send([1, 2, 3]);
            Assert.Equal(3u, Expect.Completion(port).BytesTransferred);
            Expect.Started(port.Send(server, buffer.AsMemory(0, 3), SocketFlags.None, null));
            Assert.Equal(SocketError.Success, Expect.Completion(port).SocketError);
            client.Receive(buffer);
        }
    }
}
