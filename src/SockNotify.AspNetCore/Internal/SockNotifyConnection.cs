using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;

namespace SockNotify.AspNetCore.Internal;

// One accepted TCP connection as Kestrel sees it: a ConnectionContext whose Transport is a duplex pipe, fed and drained
// by two loops on the connection's I/O queue.
//
// Who does what:
// - The receive loop starts one receive at a time on the port (pooled: a buffer of the port's pool is taken only when
//   data arrives, copied into the input pipe and given back at once; direct: into the input pipe's memory), and
//   flushes what arrived. A flush that waits (the application is MaxReadBufferSize behind) pauses the loop: no receive
//   is pending then, which is the read backpressure. FIN, RST, an error or the close ends it: it completes the input
//   pipe (with the shutdown reason if there is one), then fires ConnectionClosed (on the thread pool, as the Sockets
//   transport does, so that no token callback runs on an I/O thread).
// - The send loop reads the output pipe and sends what it holds, one send at a time (vectored when the data spans
//   several blocks), and advances the pipe only once the port says every byte is in the kernel, so a block is never
//   reused while the kernel reads it. The output pipe's MaxWriteBufferSize makes the application's flushes wait
//   meanwhile: the write backpressure. When the application completes the output, the loop ends the connection with
//   FIN; on a send error, with the error.
// - Both loops run on the queue's thread: a completion resumes its loop inline there, and the pipes schedule the
//   loops' continuations on the queue. The application's side runs on the thread pool (or inline with
//   UnsafePreferInlineScheduling).
// - Any thread may call Abort: it ends the connection with RST (FIN with FinOnError) and cancels the send loop's read.
//
// The close: Shutdown runs once (the first caller records the reason), and closes the socket with the port's
// CloseSocket, so the peer sees FIN or RST at once and the pending operations complete with OperationAborted, which
// ends both loops.
//
// Starts take no lock (they did until the port's CloseSocket covered their race with the close). Who can start or
// close, and why each race is covered:
// - Both loops start their operations on the queue's thread (only the very first receive starts on the accepting
//   thread, in Start, before anyone else can reach the connection), so a loop's start never races the other loop's, nor
//   the close the send loop makes itself when the output completes or a send fails.
// - Abort runs on any thread, so its close races the loops' starts. The port settles that race (CloseSocket's
//   contract, and the test An_operation_started_while_another_thread_closes_the_socket_is_aborted_never_refused): a
//   start before the close's association end is cancelled by it and completes with OperationAborted; one during it is
//   refused or cancelled, never refused as "not associated"; one after it finds the socket closed and returns
//   OperationAborted. Either way the loop ends, and because _shutdownReason is written before CloseSocket is called,
//   the loop that meets OperationAborted finds the reason and reports it, not an error of its own. The check of
//   _shutdownReason before a start only saves a call into the port.
// - Abort's socket options (linger 0 for RST, shutdown for FIN) may meet an operation the loops just started: a send
//   then fails with EPIPE or a reset and a receive ends, both after the reason is recorded, so the reason still wins.
// Shutdown itself keeps _shutdownLock, for a race the port does not cover: the loop that loses the race to record a
// reason must not end before the winner's CloseSocket has returned. Otherwise (say Abort on a Kestrel thread between
// recording its reason and CloseSocket, while the send loop ends because the output completed) both loops could end,
// DisposeAsync release the last reference to the I/O queues and dispose the port, and the winner's CloseSocket would
// then throw ObjectDisposedException out of Abort and leave the socket to its finalizer. Under the lock, the loser waits
// for the winner's close, so DisposeAsync (which waits for both loops) returns only after the socket is closed.

// What each side promises: the port completes every started operation exactly once, and its buffer (pooled, or the
// pipe's memory) is not touched by the kernel after that; the loops leave a pipe block to the pipe (Advance, AdvanceTo,
// Complete) only after the operation that used it completed. So DisposeAsync, which waits for both loops, returns with
// no operation in flight, every pooled buffer given back and every pipe block back in the memory pool.
internal sealed partial class SockNotifyConnection : ConnectionContext,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IMemoryPoolFeature,
    IConnectionLifetimeFeature, IConnectionEndPointFeature, IConnectionSocketFeature
{
    /// <summary>The smallest receive into pipe memory (direct mode): half a block, as the Sockets transport asks.</summary>
    private const int MinimumReceiveSize = 2048;

    /// <summary>The most pipe segments one vectored send takes; longer output goes in several sends.</summary>
    private const int MaxSendSegments = 64;

    private readonly Socket _socket;
    private readonly CompletionPort _port;
    private readonly IoQueueGroup _queues;
    private readonly ILogger _logger;
    private readonly bool _receivePooled;
    private readonly bool _finOnError;
    private readonly Pipe _input;
    private readonly Pipe _output;
    private readonly DuplexPipe _originalTransport;
    private readonly PortOperation _receive = new(runContinuationsAsynchronously: false);
    private readonly PortOperation _send = new(runContinuationsAsynchronously: false);
    private readonly CancellationTokenSource _connectionClosedTokenSource = new();
    private readonly TaskCompletionSource _connectionClosedFired = new();
    private readonly Lock _shutdownLock = new();

    private volatile Exception? _shutdownReason;
    private ReadOnlyMemory<byte>[]? _sendSegments;
    private string? _connectionId;
    private IDictionary<object, object?>? _items;
    private Task? _receiving;
    private Task? _sending;
    private int _connectionClosed;
    private int _disposed;

    public SockNotifyConnection(
        Socket socket, IoQueueGroup queues, IoQueue queue, MemoryPool<byte> memoryPool, PipeOptions inputOptions,
        PipeOptions outputOptions, SockNotifyTransportOptions options, ILogger logger)
    {
        _socket = socket;
        _queues = queues;
        _port = queue.Port;
        MemoryPool = memoryPool;
        _logger = logger;
        _receivePooled = options.ReceiveMode == SockNotifyReceiveMode.Pooled;
        _finOnError = options.FinOnError;

        LocalEndPoint = socket.LocalEndPoint;
        RemoteEndPoint = socket.RemoteEndPoint;
        ConnectionClosed = _connectionClosedTokenSource.Token;

        _input = new Pipe(inputOptions);
        _output = new Pipe(outputOptions);
        Transport = _originalTransport = new DuplexPipe(_input.Reader, _output.Writer);
        Features = new ConnectionFeatures(this);
    }

    public override string ConnectionId
    {
        get => _connectionId ??= ConnectionIds.Next();
        set => _connectionId = value;
    }

    public override IFeatureCollection Features { get; }

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new Dictionary<object, object?>();
        set => _items = value;
    }

    public override IDuplexPipe Transport { get; set; }

    public MemoryPool<byte> MemoryPool { get; }

    public Socket Socket => _socket;

    public override EndPoint? LocalEndPoint { get; set; }

    public override EndPoint? RemoteEndPoint { get; set; }

    public override CancellationToken ConnectionClosed { get; set; }

    /// <summary>The transport's end of the input pipe: where received bytes go.</summary>
    private PipeWriter Received => _input.Writer;

    /// <summary>The transport's end of the output pipe: what is to be sent.</summary>
    private PipeReader ToSend => _output.Reader;

    /// <summary>Associates the socket with its queue's port and starts both loops.</summary>
    public void Start()
    {
        _port.Associate(_socket, this);
        _receiving = ReceiveLoopAsync();
        _sending = SendLoopAsync();
    }

    public override void Abort(ConnectionAbortedException abortReason)
    {
        Shutdown(abortReason);

        // After Shutdown, so that the send loop ends with the abort as the reason.
        ToSend.CancelPendingRead();
    }

    // Kestrel calls this once the connection's middleware is done, so ConnectionClosed has fired or the application
    // completed its output; waiting for the loops then waits for the last bytes to be sent and the receive to be
    // cancelled by the close.
    public override async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return; // The queues' reference is released once.
        }

        _originalTransport.Input.Complete();
        _originalTransport.Output.Complete();

        try
        {
            if (_receiving is not null)
            {
                await _receiving.ConfigureAwait(false);
            }

            if (_sending is not null)
            {
                await _sending.ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            SockNotifyLog.UnexpectedException(_logger, ConnectionId, ex);
        }
        finally
        {
            _connectionClosedTokenSource.Dispose();
            _queues.Release();
        }

        await base.DisposeAsync().ConfigureAwait(false);
    }

    private async Task ReceiveLoopAsync()
    {
        Exception? error = null;
        try
        {
            while (true)
            {
                Memory<byte> direct = _receivePooled ? default : Received.GetMemory(MinimumReceiveSize);
                _receive.Reset();
                SocketError started = StartReceive(direct);
                if (started != SocketError.IOPending)
                {
                    error = ReceiveError(started); // Null after a shutdown: its reason says why.
                    break;
                }

                CompletionEntry received = await _receive.Completion;
                if (received.SocketError != SocketError.Success)
                {
                    error = ReceiveError(received.SocketError);
                    break;
                }

                int count = (int)received.BytesTransferred;
                if (count == 0)
                {
                    SockNotifyLog.ConnectionReadFin(_logger, ConnectionId);
                    break;
                }

                if (_receivePooled)
                {
                    try
                    {
                        Received.Write(received.PooledData.Span);
                    }
                    finally
                    {
                        _port.ReturnBuffer(received);
                    }
                }
                else
                {
                    Received.Advance(count);
                }

                ValueTask<FlushResult> flushing = Received.FlushAsync();
                bool paused = !flushing.IsCompleted;
                if (paused)
                {
                    SockNotifyLog.ConnectionPause(_logger, ConnectionId);
                }

                FlushResult flushed = await flushing;
                if (paused)
                {
                    SockNotifyLog.ConnectionResume(_logger, ConnectionId);
                }

                if (flushed.IsCompleted || flushed.IsCanceled)
                {
                    break; // The application stopped reading.
                }
            }
        }
        catch (Exception ex)
        {
            error = ex;
            SockNotifyLog.ConnectionError(_logger, ConnectionId, ex);
        }
        finally
        {
            // After a shutdown, the reason it gives is what the application sees, whatever the receive met.
            Received.Complete(_shutdownReason ?? error);
            FireConnectionClosed();
            await _connectionClosedFired.Task;
        }
    }

    private async Task SendLoopAsync()
    {
        Exception? shutdownReason = null;
        Exception? unexpectedError = null;
        try
        {
            while (true)
            {
                ReadResult result = await ToSend.ReadAsync();
                if (result.IsCanceled)
                {
                    break; // Aborted.
                }

                // The whole buffer, in as many sends as its segments need. Awaited here rather than in a helper method:
                // a helper's async state would be allocated per response (the pooling builder's cache missed every time).
                ReadOnlySequence<byte> buffer = result.Buffer;
                SocketError error = SocketError.Success;
                for (ReadOnlySequence<byte> rest = buffer; !rest.IsEmpty && error == SocketError.Success;)
                {
                    _send.Reset();
                    error = StartSend(rest, out int length);
                    if (error == SocketError.IOPending)
                    {
                        CompletionEntry sent = await _send.Completion;
                        error = sent.SocketError; // A send that stops short says why (the port's contract).
                        rest = rest.Slice(length);
                    }
                }

                if (error != SocketError.Success)
                {
                    shutdownReason = SendError(error, out bool unexpected);
                    unexpectedError = unexpected ? shutdownReason : null;
                    break;
                }

                ToSend.AdvanceTo(buffer.End);
                if (result.IsCompleted)
                {
                    break; // The application completed its output: FIN.
                }
            }
        }
        catch (Exception ex)
        {
            shutdownReason = unexpectedError = ex;
            SockNotifyLog.ConnectionError(_logger, ConnectionId, ex);
        }
        finally
        {
            Shutdown(shutdownReason);
            ToSend.Complete(unexpectedError);

            // A receive loop paused on a full input pipe would wait for the application forever: let it see the end.
            Received.CancelPendingFlush();
        }
    }

    // No lock: a start that races Abort's close is aborted by the port (see the header).
    private SocketError StartReceive(Memory<byte> direct)
    {
        if (_shutdownReason is not null)
        {
            return SocketError.OperationAborted;
        }

        return _receivePooled
            ? _port.ReceivePooled(_socket, SocketFlags.None, _receive)
            : _port.Receive(_socket, direct, SocketFlags.None, _receive);
    }

    /// <summary>Starts a send of the buffer's first segments (at most <see cref="MaxSendSegments"/>), <paramref name="length"/> bytes.</summary>
    private SocketError StartSend(in ReadOnlySequence<byte> buffer, out int length)
    {
        if (buffer.IsSingleSegment)
        {
            length = (int)buffer.Length;
            return StartSend(buffer.First, default);
        }

        ReadOnlyMemory<byte>[] segments = _sendSegments ??= new ReadOnlyMemory<byte>[MaxSendSegments];
        int count = 0;
        length = 0;
        foreach (ReadOnlyMemory<byte> segment in buffer)
        {
            if (segment.IsEmpty)
            {
                continue;
            }

            segments[count++] = segment;
            length += segment.Length;
            if (count == segments.Length)
            {
                break;
            }
        }

        SocketError started = StartSend(default, segments.AsSpan(0, count));
        segments.AsSpan(0, count).Clear(); // The port copied them; the blocks must not be kept alive by this array.
        return started;
    }

    private SocketError StartSend(ReadOnlyMemory<byte> single, ReadOnlySpan<ReadOnlyMemory<byte>> segments)
    {
        if (_shutdownReason is not null)
        {
            return SocketError.OperationAborted;
        }

        return segments.IsEmpty
            ? _port.Send(_socket, single, SocketFlags.None, _send)
            : _port.Send(_socket, segments, SocketFlags.None, _send);
    }

    /// <summary>The exception a failed receive completes the input with (the shutdown reason, if any, takes precedence).</summary>
    private Exception? ReceiveError(SocketError error)
    {
        if (_shutdownReason is not null)
        {
            return null;
        }

        if (IsConnectionReset(error))
        {
            SockNotifyLog.ConnectionReset(_logger, ConnectionId);
            SocketException reset = new((int)error);
            return new ConnectionResetException(reset.Message, reset);
        }

        SocketException exception = new((int)error);
        SockNotifyLog.ConnectionError(_logger, ConnectionId, exception);
        return exception;
    }

    /// <summary>The shutdown reason of a failed send; unexpected unless the peer reset or the connection was closed.</summary>
    private Exception SendError(SocketError error, out bool unexpected)
    {
        unexpected = false;
        SocketException exception = new((int)error);
        if (IsConnectionReset(error))
        {
            SockNotifyLog.ConnectionReset(_logger, ConnectionId);
            return new ConnectionResetException(exception.Message, exception);
        }

        if (error is SocketError.OperationAborted or SocketError.Interrupted)
        {
            return exception; // The close: the reason recorded by Shutdown stands.
        }

        unexpected = true;
        SockNotifyLog.ConnectionError(_logger, ConnectionId, exception);
        return exception;
    }

    private static bool IsConnectionReset(SocketError error) =>
        error is SocketError.ConnectionReset or SocketError.Shutdown or SocketError.ConnectionAborted;

    /// <summary>
    /// Ends the connection once: FIN when the output completed (or with FinOnError), else RST. Returns only once the
    /// socket is closed, whoever closed it (the lock: see the header).
    /// </summary>
    private void Shutdown(Exception? shutdownReason)
    {
        lock (_shutdownLock)
        {
            if (_shutdownReason is not null)
            {
                return;
            }

            // Set before the close, so a loop woken by it finds the reason rather than reporting an error of its own.
            _shutdownReason = shutdownReason ?? new ConnectionAbortedException("The SockNotify transport's send loop completed gracefully.");
            try
            {
                if (shutdownReason is not null && !_finOnError)
                {
                    SockNotifyLog.ConnectionWriteRst(_logger, ConnectionId, shutdownReason.Message);
                    _socket.LingerState = new LingerOption(true, 0); // The close then sends RST.
                }
                else
                {
                    SockNotifyLog.ConnectionWriteFin(_logger, ConnectionId, _shutdownReason.Message);
                    _socket.Shutdown(SocketShutdown.Both);
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // The connection is already gone; closing it is all that is left.
            }

            try
            {
                _port.CloseSocket(_socket);
            }
            catch (Exception ex) when (ex is IOException or System.ComponentModel.Win32Exception or ObjectDisposedException)
            {
                // The port could not close it in order (its ring refuses the kernel's work, or it is gone): closed all
                // the same, and nothing escapes to Kestrel or skips the loops' own ends.
                SockNotifyLog.UnexpectedException(_logger, ConnectionId, ex);
                _socket.Dispose();
            }
        }
    }

    private void FireConnectionClosed()
    {
        if (Interlocked.Exchange(ref _connectionClosed, 1) != 0)
        {
            return;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static connection =>
        {
            try
            {
                connection._connectionClosedTokenSource.Cancel();
            }
            catch (Exception ex)
            {
                SockNotifyLog.UnexpectedException(connection._logger, connection.ConnectionId, ex);
            }

            connection._connectionClosedFired.TrySetResult();
        }, this, preferLocal: false);
    }

    private sealed class DuplexPipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
