using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

/// <summary>Far more work than the port's pool and (on io_uring) its rings hold at once: slower, never lossy.</summary>
public sealed class ScarcityTests
{
    [Theory]
    [BothBackends]
    public void A_two_buffer_pool_and_tiny_rings_serve_every_byte_of_many_connections_in_order(CompletionPortBackend backend)
    {
        const int connections = 32;
        const int messages = 8;
        const int messageSize = 300;
        using CompletionPort port = new(new CompletionPortOptions
        {
            Backend = backend,
            PooledBufferCount = 2,
            PooledBufferSize = 128, // Smaller than a message: every message arrives in pieces.
            RingSubmissionEntries = 4,
            RingCompletionEntries = 8,
        });
        TcpPair[] pairs = [.. Enumerable.Range(0, connections).Select(i => Ports.AssociatedPair(port, i))];
        try
        {
            List<byte>[] received = [.. pairs.Select(_ => new List<byte>())];
            byte[][] sent = [.. Enumerable.Range(0, connections).Select(i => Enumerable.Range(0, messages * messageSize).Select(b => (byte)(b * 31 + i)).ToArray())];
            for (int i = 0; i < connections; i++)
            {
                Expect.Started(port.ReceivePooled(pairs[i].Server, SocketFlags.None, i));
            }

            for (int message = 0; message < messages; message++)
            {
                for (int i = 0; i < connections; i++)
                {
                    pairs[i].Client.Send(sent[i].AsSpan(message * messageSize, messageSize));
                }
            }

            int total = connections * messages * messageSize;
            int delivered = 0;
            while (delivered < total)
            {
                CompletionEntry entry = Expect.Completion(port);
                int connection = (int)entry.Context!;
                Assert.Equal(SocketError.Success, entry.SocketError);
                Assert.True(entry.BytesTransferred > 0);
                received[connection].AddRange(entry.PooledData.ToArray());
                delivered += (int)entry.BytesTransferred;
                port.ReturnBuffer(entry);
                if (received[connection].Count < sent[connection].Length)
                {
                    Expect.Started(port.ReceivePooled(pairs[connection].Server, SocketFlags.None, connection));
                }
            }

            Assert.All(Enumerable.Range(0, connections), i => Assert.Equal(sent[i], received[i]));
            Expect.Nothing(port);
        }
        finally
        {
            Array.ForEach(pairs, pair => pair.Dispose());
        }
    }
}
