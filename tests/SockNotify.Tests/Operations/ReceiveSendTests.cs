using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

public class ReceiveSendTests
{
    [Theory, BothBackends]
    public void Receive_completes_with_the_bytes_sent_the_key_and_the_context(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Assert.Equal(backend, port.Backend);
        object key = new();
        object context = new();
        using TcpPair pair = Ports.AssociatedPair(port, key);
        byte[] buffer = new byte[64];

        Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, context));
        Expect.Nothing(port, 50);
        pair.Client.Send("hello"u8);

        CompletionEntry entry = Expect.Completion(port);
        Assert.Same(key, entry.CompletionKey);
        Assert.Same(context, entry.Context);
        Assert.Equal(SocketError.Success, entry.SocketError);
        Assert.Equal(5u, entry.BytesTransferred);
        Assert.Equal("hello"u8.ToArray(), buffer[..5]);
    }

    [Theory, BothBackends]
    public void Receive_of_data_already_there_completes_through_the_port(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Client.Send("ready"u8);
        Thread.Sleep(20);
        byte[] buffer = new byte[16];

        Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, "context"));

        CompletionEntry entry = Expect.Completion(port);
        Assert.Equal("context", entry.Context);
        Assert.Equal(5u, entry.BytesTransferred);
    }

    [Theory, BothBackends]
    public void Receive_at_end_of_stream_completes_with_zero_bytes(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, null));
        pair.Client.Shutdown(SocketShutdown.Send);

        CompletionEntry entry = Expect.Completion(port);
        Assert.Equal(SocketError.Success, entry.SocketError);
        Assert.Equal(0u, entry.BytesTransferred);
    }

    [Theory, BothBackends]
    public void Receive_after_the_peer_resets_completes_with_ConnectionReset(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, null));
        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close();

        CompletionEntry entry = Expect.Completion(port);
        Assert.Equal(SocketError.ConnectionReset, entry.SocketError);
        Assert.Equal(0u, entry.BytesTransferred);
    }

    [Theory, BothBackends]
    public async Task Send_completes_with_every_byte_even_when_the_kernel_takes_it_in_parts(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Server.SendBufferSize = 16 * 1024;
        byte[] data = new byte[2 * 1024 * 1024];
        Random.Shared.NextBytes(data);

        Expect.Started(port.Send(pair.Server, data, SocketFlags.None, "send"));
        Expect.Nothing(port, 50); // Far more than the socket buffers hold: it cannot have completed yet.
        // Read on another thread: the epoll backend makes progress only while a thread dequeues.
        Task<byte[]> reader = TcpPair.ReadOnOwnThread(pair.Client, data.Length);

        CompletionEntry entry = Expect.Completion(port);
        byte[] received = await reader;
        Assert.Equal("send", entry.Context);
        Assert.Equal(SocketError.Success, entry.SocketError);
        Assert.Equal((uint)data.Length, entry.BytesTransferred);
        Assert.Equal(data, received);
    }

    [Theory, BothBackends]
    public async Task Sends_started_back_to_back_arrive_in_order(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[] data = new byte[256 * 1024];
        Random.Shared.NextBytes(data);
        const int parts = 64;
        int size = data.Length / parts;
        for (int i = 0; i < parts; i++)
        {
            Expect.Started(port.Send(pair.Server, data.AsMemory(i * size, size), SocketFlags.None, i));
        }

        Task<byte[]> reader = TcpPair.ReadOnOwnThread(pair.Client, data.Length);
        List<CompletionEntry> entries = Expect.Completions(port, parts);
        byte[] received = await reader;

        Assert.Equal(data, received);
        Assert.All(entries, e => Assert.Equal((uint)size, e.BytesTransferred));
        Assert.Equal(Enumerable.Range(0, parts), entries.Select(e => (int)e.Context!).Order());
    }

    [Theory, BothBackends]
    public void Send_after_the_peer_reset_completes_with_an_error(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close();
        Thread.Sleep(50);

        Expect.Started(port.Send(pair.Server, new byte[100], SocketFlags.None, null));

        CompletionEntry entry = Expect.Completion(port);
        Assert.Contains(entry.SocketError, new[] { SocketError.ConnectionReset, SocketError.Shutdown });
    }

    [Theory, BothBackends]
    public void Vectored_receive_and_send_fill_and_drain_buffers_in_order(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[][] parts = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10], [11, 12, 13, 14, 15, 16]];
        ReadOnlyMemory<byte>[] sendBuffers = [.. parts.Select(p => (ReadOnlyMemory<byte>)p)];

        Expect.Started(port.Send(pair.Server, sendBuffers, SocketFlags.None, "gather"));
        Assert.Equal(16u, Expect.Completion(port).BytesTransferred);
        Assert.Equal(Enumerable.Range(1, 16).Select(i => (byte)i), TcpPair.ReadExactly(pair.Client, 16));

        byte[] first = new byte[4];
        byte[] second = new byte[20];
        Memory<byte>[] receiveBuffers = [first, second];
        Expect.Started(port.Receive(pair.Server, receiveBuffers, SocketFlags.None, "scatter"));
        pair.Client.Send(Enumerable.Range(1, 10).Select(i => (byte)i).ToArray());
        CompletionEntry entry = Expect.Completion(port);

        Assert.Equal("scatter", entry.Context);
        Assert.Equal(10u, entry.BytesTransferred);
        Assert.Equal([1, 2, 3, 4], first);
        Assert.Equal([5, 6, 7, 8, 9, 10], second[..6]);
    }

    [Theory, BothBackends]
    public void Peek_leaves_the_bytes_for_the_next_receive(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Client.Send("peek"u8);
        byte[] peeked = new byte[4];
        byte[] read = new byte[4];

        Expect.Started(port.Receive(pair.Server, peeked, SocketFlags.Peek, "peek"));
        Assert.Equal(4u, Expect.Completion(port).BytesTransferred);
        Expect.Started(port.Receive(pair.Server, read, SocketFlags.None, "read"));
        Assert.Equal(4u, Expect.Completion(port).BytesTransferred);

        Assert.Equal(peeked, read);
    }

    [Theory, BothBackends]
    public void A_zero_byte_receive_waits_for_data_and_consumes_none(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Expect.Started(port.Receive(pair.Server, Memory<byte>.Empty, SocketFlags.None, "wait"));
        Expect.Nothing(port, 50); // No data yet: it waits, as Winsock's zero-byte receive does.

        pair.Client.Send("abc"u8);
        CompletionEntry ready = Expect.Completion(port);
        Assert.Equal(("wait", SocketError.Success, 0u), (ready.Context, ready.SocketError, ready.BytesTransferred));

        byte[] buffer = new byte[8];
        Expect.Started(port.Receive(pair.Server, buffer, SocketFlags.None, "read"));
        Assert.Equal(3u, Expect.Completion(port).BytesTransferred);
        Assert.Equal("abc"u8.ToArray(), buffer[..3]);

        pair.Client.Shutdown(SocketShutdown.Send);
        Expect.Started(port.Receive(pair.Server, Memory<byte>.Empty, SocketFlags.None, "end"));
        Assert.Equal(("end", SocketError.Success, 0u), Expect.Completion(port) is var end ? (end.Context, end.SocketError, end.BytesTransferred) : default);
    }
}
