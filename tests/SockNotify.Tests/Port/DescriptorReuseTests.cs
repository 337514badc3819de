using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Port;

/// <summary>
/// libuv's <c>iouring_pollhup</c> case, with threads dequeuing all along: a socket closed while the kernel still
/// reports it, and a new socket that at once gets its descriptor number, in the same port under a new key. Nothing of
/// the old socket may surface once its close returned (but its own operation's abort), and nothing of the new socket's
/// may surface under the old key or context.
/// </summary>
[Collection(nameof(DescriptorSensitive))] // Alone, so that the closed number goes where the test puts it.
public sealed class DescriptorReuseTests
{
    private const int Rounds = 150;

    [Theory]
    [BothBackends("Dispose")]
    [BothBackends("CloseSocket")]
    public void A_socket_that_reuses_a_closed_sockets_number_never_sees_its_predecessors_events_or_completions(
        CompletionPortBackend backend, string closing)
    {
        using CompletionPort port = Ports.Create(backend);
        ConcurrentDictionary<Tag, long> closedAt = [];
        ConcurrentQueue<string> violations = [];
        using CancellationTokenSource stop = new();
        Thread[] dequeuers = [.. Enumerable.Range(0, 2).Select(_ => new Thread(() => Dequeue(port, closedAt, violations, stop.Token)))];
        Array.ForEach(dequeuers, thread => thread.Start());
        int reused = 0;
        try
        {
            for (int round = 0; round < Rounds; round++)
            {
                bool notifications = round % 2 == 0; // Alternately a level registration that always reports, and a pending receive.
                TcpPair old = TcpPair.Create();
                Tag oldTag = new(round, "old");
                Watch(port, old.Server, oldTag, notifications);
                int number = (int)old.Server.Handle;
                using TcpPair fresh = TcpPair.Create(); // Made first, so that none of its own sockets takes the number.
                if (closing == "CloseSocket")
                {
                    port.CloseSocket(old.Server);
                }
                else
                {
                    old.Server.Dispose();
                }

                closedAt[oldTag] = Stopwatch.GetTimestamp();
                using Socket reuse = new(new SafeSocketHandle(Libc.DupAtOrAbove(fresh.Server.Handle, number), ownsHandle: true)) { Blocking = false };
                fresh.Server.Dispose();
                reused += (int)reuse.Handle == number ? 1 : 0;
                Watch(port, reuse, new Tag(round, "new"), notifications);
                fresh.Client.Send([1]); // Only the new socket ever receives data.
                old.Client.Dispose();
                port.CloseSocket(reuse);
            }
        }
        finally
        {
            Thread.Sleep(200); // The dequeuers see what the last rounds left.
            stop.Cancel();
            Array.ForEach(dequeuers, thread => thread.Join());
        }

        Assert.Empty(violations);
        Assert.True(reused > Rounds / 2, $"Only {reused} of {Rounds} new sockets got the closed number.");
    }

    private static void Watch(CompletionPort port, Socket socket, Tag tag, bool notifications)
    {
        if (notifications)
        {
            port.Register(Items.Enable(socket, tag, SocketNotifyEvents.In | SocketNotifyEvents.Out,
                SocketNotifyTrigger.Level | SocketNotifyTrigger.Persistent));
        }
        else
        {
            port.Associate(socket, tag);
            Expect.Started(port.Receive(socket, new byte[8], SocketFlags.None, tag));
        }
    }

    private static void Dequeue(CompletionPort port, ConcurrentDictionary<Tag, long> closedAt, ConcurrentQueue<string> violations, CancellationToken stop)
    {
        CompletionEntry[] entries = new CompletionEntry[16];
        while (!stop.IsCancellationRequested)
        {
            long began = Stopwatch.GetTimestamp();
            port.GetQueuedCompletionStatus(entries, out int count, 20);
            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                bool operation = entry.Context is Tag;
                if ((operation ? entry.Context : entry.CompletionKey) is not Tag { Kind: "old" } tag)
                {
                    continue;
                }

                if (operation && entry.SocketError == SocketError.Success && entry.BytesTransferred > 0)
                {
                    violations.Enqueue($"{tag}: received the new socket's data");
                }
                else if (!operation && closedAt.TryGetValue(tag, out long closed) && began > closed)
                {
                    violations.Enqueue($"{tag}: {entry.Events} notified after its close returned");
                }
            }
        }
    }

    private sealed record Tag(int Round, string Kind);
}
