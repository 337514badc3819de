using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json.Serialization;
using HdrHistogram;

namespace SockNotify.Cli.Bench;

/// <summary>What one load run measured, after its warm-up.</summary>
internal sealed record LoadResult(
    int Connections,
    int Size,
    int Depth,
    double Seconds,
    long Messages,
    double MessagesPerSecond,
    double P50Microseconds,
    double P99Microseconds,
    double P999Microseconds,
    double CpuSeconds,
    string? Error);

[JsonSerializable(typeof(LoadResult))]
internal sealed partial class LoadResultJson : JsonSerializerContext;

/// <summary>
/// The load generator of <c>socknotify bench</c> (<c>socknotify load</c>): one thread drives every connection through
/// a <see cref="CompletionPort"/>, keeping <c>depth</c> messages of <c>size</c> bytes in flight on each, verifying
/// every echoed byte and recording each round trip in an HdrHistogram. It is written to cost little per message,
/// so that it is not the bottleneck of the engines it measures; it reports its own CPU time to prove it.
/// </summary>
internal static class LoadGenerator
{
    /// <summary>Printed on standard output when the warm-up ends and measurement starts (the bench samples the server then).</summary>
    public const string MeasuringLine = "measuring";

    /// <summary>Printed when measurement ends, before the result.</summary>
    public const string DoneLine = "done";

    /// <summary>The most bytes one connection may have in flight (depth x size): sends block while nothing is read.</summary>
    public const int MaxBytesInFlight = 256 * 1024;

    /// <summary>
    /// Runs the load. When <paramref name="release"/> is given, waits after <see cref="DoneLine"/> until it completes
    /// before closing the connections, so that the bench can sample the server before their teardown runs on it.
    /// </summary>
    public static LoadResult Run(
        IPEndPoint server, int connections, int size, int depth, TimeSpan warmup, TimeSpan duration, TextWriter progress, Func<Task>? release = null)
    {
        if ((long)depth * size > MaxBytesInFlight)
        {
            throw new ArgumentOutOfRangeException(nameof(depth), $"depth x size may not exceed {MaxBytesInFlight} bytes.");
        }

        using CompletionPort port = new();
        Connection[] clients = new Connection[connections];
        try
        {
            for (int i = 0; i < connections; i++)
            {
                clients[i] = Connection.Open(server, i, size);
                SocketNotifyRegistration registration = new()
                {
                    Socket = clients[i].Socket,
                    CompletionKey = clients[i],
                    EventFilter = SocketNotifyEvents.In | SocketNotifyEvents.Hangup,
                    Operation = SocketNotifyOperation.Enable,
                    TriggerFlags = SocketNotifyTrigger.Level,
                };
                port.ProcessSocketNotifications(ref registration);
                if (registration.RegistrationResult != SocketNotifyResult.Success)
                {
                    return Failed($"registration failed: {registration.RegistrationResult}");
                }
            }

            LongHistogram latencies = new(TimeStamp.Seconds(10), 3);
            byte[] buffer = GC.AllocateUninitializedArray<byte>(64 * 1024, pinned: true);
            CompletionEntry[] entries = new CompletionEntry[256];
            foreach (Connection client in clients)
            {
                for (int d = 0; d < depth; d++)
                {
                    client.SendNext();
                }
            }

            long measuring = Stopwatch.GetTimestamp() + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
            long end = measuring + (long)(duration.TotalSeconds * Stopwatch.Frequency);
            bool measured = false;
            long messages = 0;
            long measuredFrom = 0;
            TimeSpan cpuAtStart = TimeSpan.Zero;
            while (true)
            {
                long now = Stopwatch.GetTimestamp();
                if (!measured && now >= measuring)
                {
                    measured = true;
                    measuredFrom = now;
                    messages = 0;
                    latencies.Reset();
                    cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
                    progress.WriteLine(MeasuringLine);
                    progress.Flush();
                }

                if (now >= end)
                {
                    break;
                }

                if (port.GetQueuedCompletionStatus(entries, out int count, 1000) == CompletionWaitResult.TimedOut)
                {
                    return Failed("no echo for a second: the server stalled");
                }

                // One timestamp per batch: the generator's own handling of earlier entries is not the server's latency.
                long arrived = Stopwatch.GetTimestamp();
                foreach (CompletionEntry entry in entries.AsSpan(0, count))
                {
                    Connection client = (Connection)entry.CompletionKey!;
                    if (client.Receive(buffer, arrived, latencies, out int completed) is { } error)
                    {
                        return Failed($"connection {client.Index}: {error}");
                    }

                    messages += completed;
                }
            }

            double seconds = Stopwatch.GetElapsedTime(measuredFrom).TotalSeconds;
            TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart;
            progress.WriteLine(DoneLine);
            progress.Flush();
            release?.Invoke().GetAwaiter().GetResult();
            return new LoadResult(connections, size, depth, seconds, messages, messages / seconds,
                Microseconds(latencies, 50), Microseconds(latencies, 99), Microseconds(latencies, 99.9), cpu.TotalSeconds, null);
        }
        catch (System.Net.Sockets.SocketException e)
        {
            return Failed($"{e.SocketErrorCode}: {e.Message}");
        }
        finally
        {
            foreach (Connection? client in clients)
            {
                client?.Socket.Dispose();
            }
        }

        LoadResult Failed(string why) => new(connections, size, depth, 0, 0, 0, 0, 0, 0, 0, why);
    }

    private static double Microseconds(LongHistogram histogram, double percentile) =>
        histogram.TotalCount == 0 ? 0 : histogram.GetValueAtPercentile(percentile) * 1_000_000.0 / Stopwatch.Frequency;

    /// <summary>
    /// One client connection. The byte at stream offset k is a hash of (connection, k), so the echo is verified without
    /// keeping a copy of what was sent, and no two connections (nor two blocks of one stream) carry the same bytes: a
    /// server that swapped, repeated or shifted data would be caught. Send times of in-flight messages wait in a
    /// small ring (depth is at most 64).
    /// </summary>
    private sealed class Connection
    {
        private readonly byte[] _message;
        private readonly long[] _sentAt;
        private long _sentBytes;
        private long _receivedBytes;
        private int _sentMessages;
        private int _completedMessages;

        private Connection(Socket socket, int index, int size)
        {
            Socket = socket;
            Index = index;
            _message = new byte[size];
            _sentAt = new long[64];
        }

        public Socket Socket { get; }

        public int Index { get; }

        public static Connection Open(IPEndPoint server, int index, int size)
        {
            Socket socket = new(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                socket.Connect(server);
                // Sends of small messages never wait in practice; the timeout bounds a server that stopped reading.
                socket.SendTimeout = 5000;
                return new Connection(socket, index, size);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }

        public void SendNext()
        {
            for (int i = 0; i < _message.Length; i++)
            {
                _message[i] = ExpectedByte(_sentBytes + i);
            }

            _sentAt[_sentMessages++ % _sentAt.Length] = Stopwatch.GetTimestamp();
            Socket.Send(_message);
            _sentBytes += _message.Length;
        }

        /// <summary>Takes what arrived, checks it, and answers every completed message with the next one.</summary>
        public string? Receive(byte[] buffer, long now, LongHistogram latencies, out int completed)
        {
            completed = 0;
            int count = Socket.Receive(buffer, SocketFlags.None, out SocketError error);
            if (error == SocketError.WouldBlock)
            {
                return null;
            }

            if (error != SocketError.Success || count == 0)
            {
                return error == SocketError.Success ? "the server closed the connection" : $"receive failed: {error}";
            }

            for (int i = 0; i < count; i++)
            {
                if (buffer[i] != ExpectedByte(_receivedBytes + i))
                {
                    return $"byte {_receivedBytes + i} of the echo differs from what was sent";
                }
            }

            _receivedBytes += count;
            while ((long)(_completedMessages + 1) * _message.Length <= _receivedBytes)
            {
                latencies.RecordValue(now - _sentAt[_completedMessages++ % _sentAt.Length]);
                completed++;
                SendNext();
            }

            return null;
        }

        private byte ExpectedByte(long offset)
        {
            // SplitMix64's finalizer over (connection, 8-byte word), one byte of the word per offset.
            ulong x = ((ulong)Index << 40) ^ (ulong)(offset >> 3);
            x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
            x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
            x ^= x >> 31;
            return (byte)(x >> (int)((offset & 7) * 8));
        }
    }
}
