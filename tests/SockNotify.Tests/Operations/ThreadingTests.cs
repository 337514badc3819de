using System.Collections.Concurrent;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

public class ThreadingTests
{
    /// <summary>
    /// A thread handling entries it dequeued leaves its starts to its own next wait (one submission for all of them).
    /// One that starts an operation and then never dequeues again, while another thread sleeps in the port, must not
    /// leave the operation waiting for nobody: it completes and the sleeper gets it.
    /// </summary>
    [Theory, BothBackends]
    public void An_operation_started_by_a_dequeuer_that_never_comes_back_completes_for_a_sleeping_thread(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "pair");
        using Barrier asleep = new(2);
        CompletionEntry received = default;
        Thread sleeper = new(() =>
        {
            asleep.SignalAndWait();
            received = Expect.Completion(port);
        });
        sleeper.Start();
        asleep.SignalAndWait();
        Thread.Sleep(100); // The sleeper is in the port.

        port.PostQueuedCompletionStatus("key", 0, "posted");
        // This thread dequeues the post, as a worker would, then starts a receive and never dequeues again: the sleeper
        // may take the post instead, which tests the plain path.
        CompletionEntry[] entries = new CompletionEntry[1];
        bool gotPost = port.GetQueuedCompletionStatus(entries, out int count, 100) == CompletionWaitResult.Success && count == 1;
        Expect.Started(port.Receive(pair.Server, new byte[16], SocketFlags.None, "receive"));
        pair.Client.Send("data"u8);

        Assert.True(sleeper.Join(TimeSpan.FromSeconds(5)), "the sleeping thread got no completion");
        CompletionEntry receive = gotPost ? received : Expect.Completion(port);
        Assert.Equal(("receive", SocketError.Success, 4u), (receive.Context, receive.SocketError, receive.BytesTransferred));
    }

    /// <summary>
    /// The seed's worker-thread model: four threads dequeue from one port and each echoes what it receives; clients
    /// count every byte back. No completion may be lost (a connection would stall) or duplicated (bytes would repeat).
    /// </summary>
    [Theory, BothBackends]
    public void Four_workers_echo_100_connections_of_1000_messages_without_losing_or_repeating_one(CompletionPortBackend backend)
    {
        const int connections = 100;
        const int messages = 1000;
        using CompletionPort port = Ports.Create(backend);
        TcpPair[] pairs = [.. Enumerable.Range(0, connections).Select(_ => TcpPair.Create())];
        EchoConnection[] echoes = [.. pairs.Select(p => new EchoConnection(p.Server))];
        ConcurrentQueue<Exception> failures = [];
        try
        {
            for (int i = 0; i < connections; i++)
            {
                port.Associate(pairs[i].Server, echoes[i]);
                Expect.Started(port.Receive(pairs[i].Server, echoes[i].Buffer, SocketFlags.None, EchoConnection.ReceiveContext));
            }

            Thread[] workers = [.. Enumerable.Range(0, 4).Select(_ => new Thread(() => Work(port, failures)))];
            Array.ForEach(workers, w => w.Start());
            // Client threads of their own: blocked pool threads would starve other tests running in parallel.
            Thread[] clients = [.. Enumerable.Range(0, 4).Select(t => new Thread(() =>
            {
                try
                {
                    for (int i = t; i < connections; i += 4)
                    {
                        Drive(pairs[i].Client, i, messages);
                    }
                }
                catch (Exception e)
                {
                    failures.Enqueue(e);
                }
            }))];
            Array.ForEach(clients, c => c.Start());
            Assert.All(clients, c => Assert.True(c.Join(TimeSpan.FromSeconds(60))));
            // A client can read its last echo before the server dequeued that send's completion.
            Assert.True(SpinWait.SpinUntil(() => echoes.All(e => Interlocked.Read(ref e.BytesEchoed) == messages * 4L), 10_000));
            for (int i = 0; i < workers.Length; i++)
            {
                port.PostQueuedCompletionStatus(null, 0, "exit");
            }

            Assert.All(workers, w => Assert.True(w.Join(TimeSpan.FromSeconds(30))));
            Assert.Empty(failures);
            Assert.All(echoes, e => Assert.Equal(messages * 4L, e.BytesEchoed));
        }
        finally
        {
            Array.ForEach(pairs, p => p.Dispose());
        }
    }

    private static void Work(CompletionPort port, ConcurrentQueue<Exception> failures)
    {
        CompletionEntry[] entries = new CompletionEntry[1]; // One at a time, as the seed's workers: each takes one exit.
        try
        {
            while (true)
            {
                CompletionWaitResult result = port.GetQueuedCompletionStatus(entries, out int count, 30_000);
                if (result == CompletionWaitResult.PortClosed)
                {
                    return; // The test failed elsewhere and is tearing down.
                }

                Assert.Equal(CompletionWaitResult.Success, result);
                foreach (CompletionEntry entry in entries.AsSpan(0, count))
                {
                    if (entry.Context is "exit")
                    {
                        return;
                    }

                    ((EchoConnection)entry.CompletionKey!).OnCompleted(port, entry);
                }
            }
        }
        catch (Exception e)
        {
            failures.Enqueue(e);
        }
    }

    /// <summary>Sends 4-byte sequence numbers one at a time and checks each comes back once, in order.</summary>
    private static void Drive(Socket client, int connection, int messages)
    {
        client.ReceiveTimeout = 30_000;
        byte[] buffer = new byte[4];
        for (int i = 0; i < messages; i++)
        {
            BitConverter.TryWriteBytes(buffer, (connection << 16) | i);
            client.Send(buffer);
            Assert.Equal(buffer.ToArray(), TcpPair.ReadExactly(client, 4));
        }
    }

    /// <summary>One receive or one send at a time per connection, as the seed's server does.</summary>
    private sealed class EchoConnection(Socket socket)
    {
        public const string ReceiveContext = "receive";
        public const string SendContext = "send";

        public byte[] Buffer { get; } = new byte[64];

        public long BytesEchoed;

        public void OnCompleted(CompletionPort port, in CompletionEntry entry)
        {
            Assert.Equal(SocketError.Success, entry.SocketError);
            if (entry.Context is ReceiveContext)
            {
                Assert.True(entry.BytesTransferred > 0, "The client never closes first.");
                Expect.Started(port.Send(socket, Buffer.AsMemory(0, (int)entry.BytesTransferred), SocketFlags.None, SendContext));
            }
            else
            {
                Interlocked.Add(ref BytesEchoed, entry.BytesTransferred);
                Expect.Started(port.Receive(socket, Buffer, SocketFlags.None, ReceiveContext));
            }
        }
    }
}
