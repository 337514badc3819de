using System.Buffers;
using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using SockNotify.AspNetCore.Internal;

namespace SockNotify.AspNetCore;

/// <summary>
/// Binds Kestrel's TCP endpoints (<see cref="IPEndPoint"/>) to SockNotify completion ports. Other endpoints (Unix domain
/// sockets, file handles) are declined through <see cref="CanBind"/>, so Kestrel gives them to its Sockets transport.
/// </summary>
/// <remarks>
/// The I/O queues (a port and a thread each) are made when the first listener binds and shared by every listener and
/// connection of this factory; the last of them to go stops the threads and closes the ports.
/// </remarks>
internal sealed class SockNotifyTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private static readonly MemoryPoolOptions PoolOptions = new() { Owner = "socknotify" };

    private readonly SockNotifyTransportOptions _options;
    private readonly IMemoryPoolFactory<byte>? _memoryPoolFactory;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private IoQueueGroup? _queues;

    /// <param name="options">The transport's options.</param>
    /// <param name="loggerFactory">Logs go to the category <c>SockNotify.AspNetCore</c>.</param>
    /// <param name="memoryPoolFactory">Kestrel's pipe memory; <see cref="MemoryPool{T}.Shared"/> when none is registered.</param>
    public SockNotifyTransportFactory(
        IOptions<SockNotifyTransportOptions> options, ILoggerFactory loggerFactory, IMemoryPoolFactory<byte>? memoryPoolFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(loggerFactory);
        _options = options.Value;
        _memoryPoolFactory = memoryPoolFactory;
        _logger = loggerFactory.CreateLogger("SockNotify.AspNetCore");
    }

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (endpoint is not IPEndPoint)
        {
            throw new NotSupportedException($"The SockNotify transport binds IP endpoints only, not {endpoint.GetType().Name}.");
        }

        IoQueueGroup queues = AcquireQueues();
        MemoryPool<byte>? memoryPool = null;
        try
        {
            memoryPool = _memoryPoolFactory?.Create(PoolOptions) ?? MemoryPool<byte>.Shared;
            SockNotifyConnectionListener listener = new(endpoint, _options, queues, memoryPool, _logger);
            listener.Bind();
            return ValueTask.FromResult<IConnectionListener>(listener);
        }
        catch
        {
            memoryPool?.Dispose();
            queues.Release();
            throw;
        }
    }

    /// <summary>The shared queues with a reference taken; a new group if the last one was let go.</summary>
    private IoQueueGroup AcquireQueues()
    {
        lock (_lock)
        {
            if (_queues is null || !_queues.TryAddReference())
            {
                _queues = IoQueueGroup.Create(_options, _logger);
                _queues.TryAddReference();
            }

            return _queues;
        }
    }
}
