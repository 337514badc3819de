using System.Buffers;
using System.Net.Sockets;

namespace SockNotify.Cli.Soak;

/// <summary>How a soak connection ends.</summary>
internal enum SoakEnding
{
    /// <summary>Shutdown Send after the last message; the server must echo everything, then close (FIN).</summary>
    HalfClose,

    /// <summary>A graceful close once every byte came back.</summary>
    Close,

    /// <summary>Linger 0 and close (RST) at a random byte, usually with data in flight both ways.</summary>
    Reset,
}

/// <summary>What one connection will do, drawn before it connects.</summary>
internal sealed record SoakConnectionPlan(long Number, ulong Key, int[] Messages, SoakEnding Ending, long ResetAt, int ChunkSeed)
{
    public long Total => Messages.Sum(m => (long)m);
}

/// <summary>
/// One connection of a soak client. A sender writes the plan's messages, each cut into random chunks of at most
/// <see cref="MaxChunk"/>, and after a message either waits for its echo or goes straight on (so the server sees
/// messages split and merged), then may idle for up to 2 s (so that most of the soak's connections are open at once);
/// a receiver waits for data with a zero-byte read (holding no buffer while idle, so thousands of connections cost
/// little), reads it in random lengths and checks every byte against the connection's stream. Errors other than the
/// ones its own reset causes, a wrong or extra byte, an early end and 30 s without finishing are failures.
/// </summary>
internal sealed class SoakConnection : IDisposable
{
    private const int MaxRead = 64 * 1024;

    /// <summary>The longest send, and so the most a client holds while the server does not read (the heap bound allows it).</summary>
    public const int MaxChunk = 16 * 1024;

    /// <summary>The longest pause after a message.</summary>
    private const int MaxIdleMilliseconds = 2000;

    private readonly Socket _socket;
    private readonly SoakConnectionPlan _plan;
    private readonly SoakShared _shared;
    private readonly string _name;
    private readonly SemaphoreSlim _echoed = new(0);
    private long _sent;
    private long _received;
    private volatile bool _receiverDone;
    private volatile bool _resetting;

    /// <summary>The place this connection holds among those the server may not have accepted yet; null once given back.</summary>
    private SemaphoreSlim? _awaitingAccept;

    private SoakConnection(Socket socket, SoakConnectionPlan plan, SoakShared shared, string name)
    {
        _socket = socket;
        _plan = plan;
        _shared = shared;
        _name = name;
        _awaitingAccept = shared.AwaitingAccept;
    }

    /// <summary>How long one connection may take from connect to its end before the soak fails as stalled.</summary>
    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Connects, runs the plan and ends the connection; returns false (with the failure reported) if it failed. It
    /// connects once <see cref="SoakShared.AwaitingAccept"/> lets it, and gives its place back when the server has shown
    /// that it accepted the connection (a first echo or end) or the connection ended.
    /// </summary>
    public static async Task<bool> RunAsync(SoakShared shared, SoakConnectionPlan plan, string name)
    {
        CancellationToken abort = shared.Abort;
        try
        {
            await shared.AwaitingAccept.WaitAsync(abort).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false; // The soak is being aborted for a failure already reported.
        }

        Socket socket;
        try
        {
            socket = new Socket(shared.Server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        }
        catch (SocketException e)
        {
            shared.AwaitingAccept.Release();
            return Failed(shared, name, plan, $"no socket: {Describe(e, abort)}"); // Out of descriptors, usually.
        }

        using CancellationTokenSource deadline = CancellationTokenSource.CreateLinkedTokenSource(abort);
        deadline.CancelAfter(Timeout);
        using SoakConnection connection = new(socket, plan, shared, name);
        try
        {
            await socket.ConnectAsync(shared.Server, deadline.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return connection.Failed($"connect failed: {Describe(e, abort)}");
        }

        shared.Tally.Opened();
        bool ended = await connection.ExchangeAsync(deadline.Token).ConfigureAwait(false);
        socket.Dispose(); // A graceful close, unless the plan reset it already.
        if (ended)
        {
            shared.Tally.Closed(reset: plan.Ending == SoakEnding.Reset);
        }
        else
        {
            shared.Tally.Abandoned();
        }

        return ended;
    }

    private async Task<bool> ExchangeAsync(CancellationToken deadline)
    {
        Task<bool> receiving = ReceiveAsync(deadline);
        bool sent;
        try
        {
            sent = await SendAsync(deadline).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            sent = Failed($"send failed after {Volatile.Read(ref _sent)} bytes sent, {Volatile.Read(ref _received)} echoed: {Describe(e, _shared.Abort)}");
        }

        if (!sent)
        {
            _resetting = true; // Give up on it: the receiver's errors from here on are this client's doing.
            _socket.Dispose();
        }

        return await receiving.ConfigureAwait(false) && sent;
    }

    /// <summary>Sends the messages, then ends the connection as the plan says; false when the receiver failed meanwhile.</summary>
    private async Task<bool> SendAsync(CancellationToken deadline)
    {
        Random random = new(_plan.ChunkSeed);
        foreach (int size in _plan.Messages)
        {
            for (int left = size; left > 0;)
            {
                if (_sent == _plan.ResetAt)
                {
                    return Reset();
                }

                // Half of the chunks are the whole rest of the message; the others cut it at a random byte. None is longer
                // than MaxChunk: a send the server does not take yet holds its buffer.
                int chunk = random.Next(2) == 0 ? left : random.Next(1, left + 1);
                chunk = (int)Math.Min(Math.Min(chunk, MaxChunk), _plan.ResetAt - _sent);
                byte[] buffer = ArrayPool<byte>.Shared.Rent(chunk);
                try
                {
                    SoakStream.Fill(_plan.Key, _sent, buffer.AsSpan(0, chunk));
                    // The receiver checks against _sent: publish the bytes as sent before the echo can arrive.
                    Volatile.Write(ref _sent, _sent + chunk);
                    await _socket.SendAsync(buffer.AsMemory(0, chunk), SocketFlags.None, deadline).ConfigureAwait(false);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }

                left -= chunk;
            }

            // Ping-pong or pipelined, at random: waiting keeps this message apart from the next at the server.
            if (random.Next(2) == 0 && !await EchoedAsync(_sent, deadline).ConfigureAwait(false))
            {
                return false;
            }

            // Idle for a while, at random, as real clients are: the server holds nearly all the soak's connections at
            // once, most of them idle, instead of the few the listen queue lets through (see SoakRunner.MaxAwaitingAccept).
            if (random.Next(2) == 0)
            {
                await IdleAsync(random.Next(1, MaxIdleMilliseconds + 1)).ConfigureAwait(false);
            }
        }

        switch (_plan.Ending)
        {
            case SoakEnding.Reset:
                return Reset();
            case SoakEnding.HalfClose:
                _socket.Shutdown(SocketShutdown.Send); // The receiver reads on until the server's FIN.
                return true;
            default:
                return await EchoedAsync(_plan.Total, deadline).ConfigureAwait(false); // Then the caller closes.
        }
    }

    private bool Reset()
    {
        _resetting = true;
        _socket.LingerState = new LingerOption(true, 0);
        _socket.Dispose(); // With linger 0 this sends RST, even with the receiver's read pending.
        return true;
    }

    /// <summary>Waits until <paramref name="bytes"/> came back verified; false if the receiver stopped first.</summary>
    private async Task<bool> EchoedAsync(long bytes, CancellationToken deadline)
    {
        while (Volatile.Read(ref _received) < bytes)
        {
            if (_receiverDone)
            {
                return false;
            }

            await _echoed.WaitAsync(deadline).ConfigureAwait(false);
        }

        return true;
    }

    private async Task<bool> ReceiveAsync(CancellationToken deadline)
    {
        Random random = new(~_plan.ChunkSeed);
        try
        {
            while (true)
            {
                if (_plan.Ending == SoakEnding.Close && _received == _plan.Total)
                {
                    return true; // Everything is back; the close is the sender's.
                }

                // Wait for data without a buffer, then read it in a random length.
                await _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, deadline).ConfigureAwait(false);
                int length = random.Next(1, MaxRead + 1);
                byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
                byte[] scratch = ArrayPool<byte>.Shared.Rent(length);
                try
                {
                    int count = await _socket.ReceiveAsync(buffer.AsMemory(0, length), SocketFlags.None, deadline).ConfigureAwait(false);
                    Accepted(); // Whatever came, the server had the connection.
                    if (count == 0)
                    {
                        return _received == _plan.Total && _plan.Ending == SoakEnding.HalfClose
                            || Failed($"the server closed the connection after echoing {_received} of {Volatile.Read(ref _sent)} bytes sent");
                    }

                    if (_received + count > Volatile.Read(ref _sent))
                    {
                        return Failed($"{_received + count} bytes echoed, more than the {Volatile.Read(ref _sent)} sent");
                    }

                    int mismatch = SoakStream.FirstMismatch(_plan.Key, _received, buffer.AsSpan(0, count), scratch);
                    if (mismatch >= 0)
                    {
                        long offset = _received + mismatch;
                        return Failed($"echoed byte {offset} is {buffer[mismatch]}, sent {SoakStream.ByteAt(_plan.Key, offset)}");
                    }

                    Volatile.Write(ref _received, _received + count);
                    _shared.Tally.Verified(count);
                    _echoed.Release();
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    ArrayPool<byte>.Shared.Return(scratch);
                }
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // After its own reset the client's read fails; that is the reset working, not the server failing.
            return _resetting || Failed($"receive failed after {_received} bytes echoed of {Volatile.Read(ref _sent)} sent: {Describe(e, _shared.Abort)}");
        }
        finally
        {
            _receiverDone = true;
            _echoed.Release();
        }
    }

    public void Dispose()
    {
        Accepted(); // Or given up: either way it no longer waits in the listener's queue as this client's.
        _socket.Dispose();
        _echoed.Dispose();
    }

    /// <summary>Pauses, unless the soak is ending: then the connection finishes at once, so the last ones drain quickly.</summary>
    private async Task IdleAsync(int milliseconds)
    {
        try
        {
            await Task.Delay(milliseconds, _shared.Stopping).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Gives back this connection's place among those waiting to be accepted, once.</summary>
    private void Accepted() => Interlocked.Exchange(ref _awaitingAccept, null)?.Release();

    /// <summary>Reports a failure unless the whole soak is being aborted (then errors are its consequence); returns false.</summary>
    private bool Failed(string why) => Failed(_shared, _name, _plan, why);

    private static bool Failed(SoakShared shared, string name, SoakConnectionPlan plan, string why)
    {
        if (!shared.Abort.IsCancellationRequested)
        {
            shared.Tally.Fail($"{name} ({plan.Ending}, {plan.Messages.Length} messages, {plan.Total} bytes): {why}");
        }

        return false;
    }

    private static string Describe(Exception e, CancellationToken abort) => e switch
    {
        SocketException socket => $"{socket.SocketErrorCode} ({socket.Message})",
        OperationCanceledException when !abort.IsCancellationRequested => $"not done after {Timeout.TotalSeconds:0} s",
        _ => e.GetType().Name,
    };
}
