using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

/// <summary>
/// A thread that dequeues submits the io_uring entries of operations others started, and a request whose submitting
/// thread has exited is ended by the kernel when it next makes progress (its task work has no thread to run on): with
/// ECANCELED, or with the count of a send that went in part. That thread's exit must not end anyone's operation.
/// </summary>
public sealed class ExitingThreadTests
{
    [Theory]
    [BothBackends]
    public void Operations_submitted_by_a_thread_that_then_exits_complete_as_if_it_had_lived(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair receiving = Ports.AssociatedPair(port, "receiving");
        using TcpPair pooled = Ports.AssociatedPair(port, "pooled");
        using Socket listener = Loopback.Listener();
        port.Associate(listener, "listener");
        using Socket connecting = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        port.Associate(connecting, "connecting");
        using Socket full = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        full.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        full.Listen(0);
        using Socket first = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        first.Connect(full.LocalEndPoint!); // Fills the accept queue: the next connect's SYN is dropped, so it waits.

        byte[] buffer = new byte[16];
        Expect.Started(port.Receive(receiving.Server, buffer, SocketFlags.None, "receive"));
        Expect.Started(port.ReceivePooled(pooled.Server, SocketFlags.None, "pooled"));
        Expect.Started(port.Accept(listener, "accept"));
        Expect.Started(port.Connect(connecting, full.LocalEndPoint!, "connect"));

        // A thread that dequeues (submitting the entries above) and exits before any of them completes.
        ExitingThread.Run(() => Expect.Nothing(port, 50));

        receiving.Client.Send("seven!!"u8);
        pooled.Client.Send("pool"u8);
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        full.Accept().Dispose(); // Room in the queue: the connect's next SYN (a second or so later) gets through.
        List<CompletionEntry> entries = Expect.Completions(port, 4);

        Dictionary<object, CompletionEntry> byContext = entries.ToDictionary(e => e.Context!);
        Assert.All(entries, e => Assert.True(e.SocketError == SocketError.Success, $"{e.Context}: {e.SocketError}"));
        Assert.Equal((SocketError.Success, 7u), (byContext["receive"].SocketError, byContext["receive"].BytesTransferred));
        Assert.Equal("pool"u8.ToArray(), byContext["pooled"].PooledData.ToArray());
        port.ReturnBuffer(byContext["pooled"]);
        using Socket? accepted = byContext["accept"].AcceptSocket;
        Assert.Equal(client.LocalEndPoint, accepted!.RemoteEndPoint);
    }

    /// <summary>
    /// The kernel ends a cancelled send that went in part with the count of bytes it sent, not with ECANCELED: a send
    /// submitted by a thread that exits midway must still send every byte, once, in order (found by the soak: an echo
    /// lost the rest of a 64 KiB chunk when a thread-pool thread that had submitted it retired).
    /// </summary>
    [Theory]
    [BothBackends]
    public async Task A_send_that_went_in_part_when_its_submitting_thread_exited_sends_the_rest(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "pair");
        pair.Server.SendBufferSize = 64 * 1024; // Fixed sizes (no autotuning): the first send cannot go in whole.
        pair.Client.ReceiveBufferSize = 64 * 1024;
        byte[] data = new byte[2 * 1024 * 1024];
        new Random(7).NextBytes(data);
        byte[] first = data[..(data.Length / 2)], second = data[(data.Length / 2)..];
        Expect.Started(port.Send(pair.Server, first, SocketFlags.None, "single"));
        Expect.Started(port.Send(pair.Server, [second.AsMemory(0, 1000), second.AsMemory(1000)], SocketFlags.None, "vectored"));

        // A thread that dequeues (submitting the first send, which fills the socket and waits) and exits.
        ExitingThread.Run(() => Expect.Nothing(port, 50));

        Task<byte[]> reading = TcpPair.ReadOnOwnThread(pair.Client, data.Length);
        List<CompletionEntry> entries = Expect.Completions(port, 2);
        Assert.Equal(
            [("single", SocketError.Success, (uint)first.Length), ("vectored", SocketError.Success, (uint)second.Length)],
            entries.Select(e => ((string)e.Context!, e.SocketError, e.BytesTransferred)));
        Assert.Equal(data, await reading.WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
