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

        Completions.AssertStarted(port.Receive(pair.Server, buffer, SocketFlags.None, context));
        Completions.None(port, 50);
        pair.Client.Send("hello"u8);

        CompletionEntry entry = Completions.Next(port);
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

        Completions.AssertStarted(port.Receive(pair.Server, buffer, SocketFlags.None, "context"));

        CompletionEntry entry = Completions.Next(port);
        Assert.Equal("context", entry.Context);
        Assert.Equal(5u, entry.BytesTransferred);
    }

    [Theory, BothBackends]
    public void Receive_at_end_of_stream_completes_with_zero_bytes(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Completions.AssertStarted(port.Receive(pair.Server, new byte[16], SocketFlags.None, null));
        pair.Client.Shutdown(SocketShutdown.Send);

        CompletionEntry entry = Completions.Next(port);
        Assert.Equal(SocketError.Success, entry.SocketError);
        Assert.Equal(0u, entry.BytesTransferred);
    }

    [Theory, BothBackends]
    public void Receive_after_the_peer_resets_completes_with_ConnectionReset(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        Completions.AssertStarted(port.Receive(pair.Server, new byte[16], SocketFlags.None, null));
        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close();

        CompletionEntry entry = Completions.Next(port);
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

        Completions.AssertStarted(port.Send(pair.Server, data, SocketFlags.None, "send"));
        Completions.None(port, 50); // Far more than the socket buffers hold: it cannot have completed yet.
        // Read on another thread: the epoll backend makes progress only while a thread dequeues.
        Task<byte[]> reader = ReadOnOwnThread(pair.Client, data.Length);

        CompletionEntry entry = Completions.Next(port);
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
            Completions.AssertStarted(port.Send(pair.Server, data.AsMemory(i * size, size), SocketFlags.None, i));
        }

        Task<byte[]> reader = ReadOnOwnThread(pair.Client, data.Length);
        List<CompletionEntry> entries = Completions.Take(port, parts);
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

        Completions.AssertStarted(port.Send(pair.Server, new byte[100], SocketFlags.None, null));

        CompletionEntry entry = Completions.Next(port);
        Assert.Contains(entry.SocketError, new[] { SocketError.ConnectionReset, SocketError.Shutdown });
    }

    [Theory, BothBackends]
    public void Vectored_receive_and_send_fill_and_drain_buffers_in_order(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");
        byte[][] parts = [[1, 2, 3], [4, 5], [6, 7, 8, 9], [10], [11, 12, 13, 14, 15, 16]];
        ReadOnlyMemory<byte>[] sendBuffers = [.. parts.Select(p => (ReadOnlyMemory<byte>)p)];

        Completions.AssertStarted(port.Send(pair.Server, sendBuffers, SocketFlags.None, "gather"));
        Assert.Equal(16u, Completions.Next(port).BytesTransferred);
        Assert.Equal(Enumerable.Range(1, 16).Select(i => (byte)i), ReadExactly(pair.Client, 16));

        byte[] first = new byte[4];
        byte[] second = new byte[20];
        Memory<byte>[] receiveBuffers = [first, second];
        Completions.AssertStarted(port.Receive(pair.Server, receiveBuffers, SocketFlags.None, "scatter"));
        pair.Client.Send(Enumerable.Range(1, 10).Select(i => (byte)i).ToArray());
        CompletionEntry entry = Completions.Next(port);

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

        Completions.AssertStarted(port.Receive(pair.Server, peeked, SocketFlags.Peek, "peek"));
        Assert.Equal(4u, Completions.Next(port).BytesTransferred);
        Completions.AssertStarted(port.Receive(pair.Server, read, SocketFlags.None, "read"));
        Assert.Equal(4u, Completions.Next(port).BytesTransferred);

        Assert.Equal(peeked, read);
    }

    /// <summary>Reads on a thread of its own: blocked pool threads of parallel tests cannot delay it.</summary>
    internal static Task<byte[]> ReadOnOwnThread(Socket socket, int length) =>
        Task.Factory.StartNew(() => ReadExactly(socket, length), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    internal static byte[] ReadExactly(Socket socket, int length)
    {
        byte[] buffer = new byte[length];
        socket.ReceiveTimeout = Completions.DeadlineMilliseconds;
        int total = 0;
        while (total < length)
        {
            int read = socket.Receive(buffer, total, length - total, SocketFlags.None);
            Assert.True(read > 0, "The peer closed early.");
            total += read;
        }

        return buffer;
    }
}
