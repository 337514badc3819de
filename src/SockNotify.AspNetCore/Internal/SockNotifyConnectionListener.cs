using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;

namespace SockNotify.AspNetCore.Internal;

/// <summary>
/// A listening socket on one of the transport's ports. Kestrel calls <see cref="AcceptAsync"/> in a loop, one call at a
/// time; each call keeps one Accept posted until a connection comes, which it hands to the next I/O queue (round robin).
/// </summary>
/// <remarks>
/// An exception out of AcceptAsync stops Kestrel accepting on this endpoint for good, so nothing that concerns one
/// connection escapes it: a connection reset in the backlog is skipped, a connection that cannot be set up is closed,
/// and a failure of the accept itself (out of descriptors: EMFILE, ENFILE; out of memory) is retried after a pause,
/// since the connection stays in the backlog and an accept posted at once would fail at once again, spinning a core.
/// It returns null once the listener is unbound.
/// </remarks>
internal sealed class SockNotifyConnectionListener : IConnectionListener
{
    private static readonly TimeSpan AcceptErrorPause = TimeSpan.FromMilliseconds(50);

    private readonly SockNotifyTransportOptions _options;
    private readonly IoQueueGroup _queues;
    private readonly MemoryPool<byte> _memoryPool;
    private readonly ILogger _logger;
    private readonly PipeOptions[] _inputOptions;
    private readonly PipeOptions[] _outputOptions;
    private readonly PortOperation _accept = new(runContinuationsAsynchronously: true);
    private readonly Lock _listenLock = new();
    private Socket? _listenSocket;
    private CompletionPort? _acceptPort;
    private bool _unbound;
    private int _disposed;

    /// <param name="endPoint">Where to listen.</param>
    /// <param name="options">The transport's options.</param>
    /// <param name="queues">The I/O queues, with a reference taken for this listener, released by <see cref="DisposeAsync"/>.</param>
    /// <param name="memoryPool">The pipes' memory, disposed with the listener.</param>
    /// <param name="logger">The transport's logger.</param>
    public SockNotifyConnectionListener(
        EndPoint endPoint, SockNotifyTransportOptions options, IoQueueGroup queues, MemoryPool<byte> memoryPool, ILogger logger)
    {
        EndPoint = endPoint;
        _options = options;
        _queues = queues;
        _memoryPool = memoryPool;
        _logger = logger;

        long maxRead = options.MaxReadBufferSize ?? 0;
        long maxWrite = options.MaxWriteBufferSize ?? 0;
        PipeScheduler application = options.UnsafePreferInlineScheduling ? PipeScheduler.Inline : PipeScheduler.ThreadPool;
        _inputOptions = new PipeOptions[queues.Count];
        _outputOptions = new PipeOptions[queues.Count];
        for (int i = 0; i < queues.Count; i++)
        {
            // The transport's ends resume on the connection's queue; the application's on the thread pool.
            _inputOptions[i] = new PipeOptions(memoryPool, readerScheduler: application, writerScheduler: queues[i],
                pauseWriterThreshold: maxRead, resumeWriterThreshold: maxRead / 2, useSynchronizationContext: false);
            _outputOptions[i] = new PipeOptions(memoryPool, readerScheduler: queues[i], writerScheduler: application,
                pauseWriterThreshold: maxWrite, resumeWriterThreshold: maxWrite / 2, useSynchronizationContext: false);
        }
    }

    public EndPoint EndPoint { get; private set; }

    /// <summary>Creates, binds and starts the listening socket; <see cref="AddressInUseException"/> if the address is taken.</summary>
    public void Bind()
    {
        if (_listenSocket is not null)
        {
            throw new InvalidOperationException("Transport is already bound.");
        }

        Socket listenSocket;
        try
        {
            listenSocket = _options.CreateBoundListenSocket(EndPoint);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new AddressInUseException(e.Message, e);
        }

        try
        {
            EndPoint = listenSocket.LocalEndPoint!;
            listenSocket.Listen(_options.Backlog);
            CompletionPort port = _queues[_queues.NextIndex()].Port;
            port.Associate(listenSocket, this);
            _acceptPort = port;
        }
        catch
        {
            listenSocket.Dispose();
            throw;
        }

        _listenSocket = listenSocket;
    }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        if (_listenSocket is not { } listenSocket || _acceptPort is not { } port)
        {
            throw new InvalidOperationException("Bind must be called first.");
        }

        while (true)
        {
            _accept.Reset();
            lock (_listenLock)
            {
                // Under the lock that Unbind closes under, so that no Accept starts on a listener being closed.
                if (_unbound || port.Accept(listenSocket, _accept) != SocketError.IOPending)
                {
                    return null;
                }
            }

            CompletionEntry accepted;
            using (cancellationToken.UnsafeRegister(static state => ((SockNotifyConnectionListener)state!).CancelAccept(), this))
            {
                accepted = await _accept.Completion.ConfigureAwait(false);
            }

            if (accepted.AcceptSocket is { } socket)
            {
                if (TryCreateConnection(socket) is { } connection)
                {
                    return connection;
                }

                continue;
            }

            switch (accepted.SocketError)
            {
                case SocketError.OperationAborted when Volatile.Read(ref _unbound):
                    return null;
                case SocketError.OperationAborted:
                    cancellationToken.ThrowIfCancellationRequested();
                    break;
                case SocketError.ConnectionReset or SocketError.ConnectionAborted:
                    SockNotifyLog.ConnectionReset(_logger, "(null)"); // Reset while in the backlog: take the next.
                    break;
                default:
                    SockNotifyLog.AcceptFailed(_logger, accepted.SocketError, (int)AcceptErrorPause.TotalMilliseconds);
                    await Task.Delay(AcceptErrorPause, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                    break;
            }
        }
    }

    /// <summary>Stops listening at once: the pending Accept completes aborted and AcceptAsync returns null.</summary>
    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        lock (_listenLock)
        {
            if (!_unbound)
            {
                Volatile.Write(ref _unbound, true);
                if (_listenSocket is not null)
                {
                    _acceptPort!.CloseSocket(_listenSocket);
                }
            }
        }

        return default;
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await UnbindAsync().ConfigureAwait(false);
        _memoryPool.Dispose();
        _queues.Release();
    }

    private void CancelAccept()
    {
        lock (_listenLock)
        {
            if (!_unbound)
            {
                _acceptPort!.CancelIo(_listenSocket!, _accept);
            }
        }
    }

    /// <summary>The connection for an accepted socket, or null (socket closed, logged) if it cannot be set up.</summary>
    private SockNotifyConnection? TryCreateConnection(Socket socket)
    {
        if (!_queues.TryAddReference())
        {
            socket.Dispose(); // Only after the listener was disposed: the queues are gone.
            return null;
        }

        try
        {
            if (socket.LocalEndPoint is IPEndPoint)
            {
                socket.NoDelay = _options.NoDelay;
            }

            int index = _queues.NextIndex();
            SockNotifyConnection connection = new(
                socket, _queues, _queues[index], _memoryPool, _inputOptions[index], _outputOptions[index], _options, _logger);
            connection.Start();
            return connection;
        }
        catch (Exception ex)
        {
            // Typically the peer reset it already (reading its addresses fails) or the port refused it.
            SockNotifyLog.ConnectionSetupFailed(_logger, ex);
            socket.Dispose();
            _queues.Release();
            return null;
        }
    }
}
