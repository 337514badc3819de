using Microsoft.Extensions.Logging;

namespace SockNotify.AspNetCore.Internal;

/// <summary>
/// The transport's I/O queues, shared by its listeners and their connections, and kept while any of them holds a
/// reference: a connection still sending its last bytes after its listener was disposed keeps its port and thread, and
/// the last one to let go stops the threads and closes the ports (so nothing is left after the server stops).
/// </summary>
internal sealed class IoQueueGroup
{
    private readonly IoQueue[] _queues;
    private readonly Lock _lock = new();
    private int _references;
    private uint _next;

    private IoQueueGroup(IoQueue[] queues)
    {
        _queues = queues;
    }

    public static IoQueueGroup Create(SockNotifyTransportOptions options, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.IOQueueCount, 1, nameof(options.IOQueueCount));
        CompletionPortOptions portOptions = new()
        {
            Backend = options.Backend,
            PooledBufferSize = options.PooledBufferSize,
            PooledBufferCount = options.PooledBufferCount,
        };
        IoQueue[] queues = new IoQueue[options.IOQueueCount];
        try
        {
            for (int i = 0; i < queues.Length; i++)
            {
                queues[i] = new IoQueue(portOptions, $"SockNotify I/O {i}", logger);
            }
        }
        catch
        {
            foreach (IoQueue? queue in queues)
            {
                queue?.Dispose();
            }

            throw;
        }

        return new IoQueueGroup(queues);
    }

    public int Count => _queues.Length;

    public IoQueue this[int index] => _queues[index];

    /// <summary>The next queue, round robin: where a new connection goes.</summary>
    public int NextIndex() => (int)(Interlocked.Increment(ref _next) % (uint)_queues.Length);

    /// <summary>Takes a reference; false once the last one was released (the queues are gone: make a new group).</summary>
    public bool TryAddReference()
    {
        lock (_lock)
        {
            if (_references < 0)
            {
                return false;
            }

            _references++;
            return true;
        }
    }

    /// <summary>Lets go of a reference; the last one stops the threads and closes the ports.</summary>
    public void Release()
    {
        lock (_lock)
        {
            if (--_references > 0)
            {
                return;
            }

            _references = -1;
        }

        foreach (IoQueue queue in _queues)
        {
            queue.Dispose();
        }
    }
}
