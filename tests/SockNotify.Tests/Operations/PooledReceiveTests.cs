using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

public class PooledReceiveTests
{
    [Theory, BothBackends]
    public void A_pooled_receive_delivers_the_bytes_in_a_pool_buffer(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, "pooled"));
        pair.Client.Send("pooled bytes"u8);

        CompletionEntry entry = Expect.Completion(port);

        Assert.Equal("pooled", entry.Context);
        Assert.Equal("pooled bytes"u8.ToArray(), entry.PooledData.ToArray());
        port.ReturnBuffer(entry);
        InvalidOperationException twice = Assert.Throws<InvalidOperationException>(() => port.ReturnBuffer(entry));
        Assert.Contains("already", twice.Message);
    }

    [Theory, BothBackends]
    public void A_pooled_receive_at_end_of_stream_holds_no_buffer(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, null));
        pair.Client.Shutdown(SocketShutdown.Send);

        CompletionEntry entry = Expect.Completion(port);

        Assert.Equal(0u, entry.BytesTransferred);
        Assert.True(entry.PooledData.IsEmpty);
        Assert.Throws<ArgumentException>(() => port.ReturnBuffer(entry));
    }

    [Theory, BothBackends]
    public void Receives_wait_for_a_buffer_while_every_buffer_is_lent(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend, pooledBufferCount: 2, pooledBufferSize: 64);
        TcpPair[] pairs = [.. Enumerable.Range(0, 4).Select(i => Ports.AssociatedPair(port, i))];
        try
        {
            foreach (TcpPair pair in pairs)
            {
                Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, null));
                pair.Client.Send([(byte)pairs.AsSpan().IndexOf(pair)]);
            }

            List<CompletionEntry> lent = Expect.Completions(port, 2);
            Expect.Nothing(port, 100); // Two buffers, both lent: the other two receives wait.
            lent.ForEach(e => port.ReturnBuffer(e));
            List<CompletionEntry> rest = Expect.Completions(port, 2);

            List<CompletionEntry> all = [.. lent, .. rest];
            Assert.All(all, e => Assert.Equal(SocketError.Success, e.SocketError));
            Assert.Equal([0, 1, 2, 3], all.Select(e => (int)e.CompletionKey!).Order());
            Assert.All(rest, e => Assert.Equal((byte)(int)e.CompletionKey!, e.PooledData.Span[0]));
            rest.ForEach(e => port.ReturnBuffer(e));
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
    public void A_receive_waiting_for_a_buffer_can_be_cancelled(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend, pooledBufferCount: 1, pooledBufferSize: 64);
        using TcpPair first = Ports.AssociatedPair(port, "first");
        using TcpPair second = Ports.AssociatedPair(port, "second");
        CompletionEntry lent = Ports.LendABuffer(port, first);
        Expect.Started(port.ReceivePooled(second.Server, SocketFlags.None, "waiting"));
        second.Client.Send([2]);
        Expect.Nothing(port, 100);

        Assert.True(port.CancelIo(second.Server));
        CompletionEntry cancelled = Expect.Completion(port);
        port.ReturnBuffer(lent);

        Assert.Equal("waiting", cancelled.Context);
        Assert.Equal(SocketError.OperationAborted, cancelled.SocketError);
        Expect.Nothing(port, 100);
        Assert.Equal(0, port.OperationsInUse);
    }

    [Theory, BothBackends]
    public void A_returned_buffer_reaches_a_receive_with_data_behind_one_without(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend, pooledBufferCount: 1, pooledBufferSize: 64);
        using TcpPair first = Ports.AssociatedPair(port, "first");
        using TcpPair quiet = Ports.AssociatedPair(port, "quiet");
        using TcpPair busy = Ports.AssociatedPair(port, "busy");
        CompletionEntry lent = Ports.LendABuffer(port, first);
        Expect.Started(port.ReceivePooled(quiet.Server, SocketFlags.None, "quiet")); // No data will come for it.
        Expect.Nothing(port, 50);
        Expect.Started(port.ReceivePooled(busy.Server, SocketFlags.None, "busy"));
        busy.Client.Send([3]);
        Expect.Nothing(port, 100);

        port.ReturnBuffer(lent);

        CompletionEntry received = Expect.Completion(port);
        Assert.Equal("busy", received.Context);
        Assert.Equal(3, received.PooledData.Span[0]);
        port.ReturnBuffer(received);
    }

    [Theory, BothBackends]
    public void A_second_return_after_the_buffer_was_lent_again_throws_and_leaves_the_pool_whole(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend, pooledBufferCount: 1, pooledBufferSize: 64);
        using TcpPair first = Ports.AssociatedPair(port, "first");
        using TcpPair second = Ports.AssociatedPair(port, "second");
        CompletionEntry earlier = Ports.LendABuffer(port, first);
        port.ReturnBuffer(earlier);
        CompletionEntry later = Ports.LendABuffer(port, second); // The same, only buffer.

        Assert.Throws<InvalidOperationException>(() => port.ReturnBuffer(earlier));

        // Still lent to the later completion: a receive with data waits for it, and gets it from the later return.
        Expect.Started(port.ReceivePooled(first.Server, SocketFlags.None, "waiting"));
        first.Client.Send([9]);
        Expect.Nothing(port, 100);
        port.ReturnBuffer(later);
        CompletionEntry waited = Expect.Completion(port);
        Assert.Equal(("waiting", 9), (waited.Context, (int)waited.PooledData.Span[0]));
        port.ReturnBuffer(waited);
        CompletionEntry again = Ports.LendABuffer(port, first);
        port.ReturnBuffer(again);
        Assert.Throws<InvalidOperationException>(() => port.ReturnBuffer(again));
    }

    [Fact]
    public void Pool_settings_are_checked()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CompletionPort(new CompletionPortOptions { PooledBufferCount = 3 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CompletionPort(new CompletionPortOptions { PooledBufferCount = 65536 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CompletionPort(new CompletionPortOptions { PooledBufferSize = 0 }));
    }
}
