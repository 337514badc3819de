using System.Buffers;
using System.Runtime.InteropServices;

namespace SockNotify.Internal;

/// <summary>
/// The port's receive buffers: one page-aligned native slab cut into equal buffers, so that a connection waiting for
/// data holds no buffer and the kernel (io_uring's provided buffer ring) or the epoll engine picks one only when data
/// arrives. Pages are touched only when a buffer is first used. The free stack serves the epoll engine; the io_uring
/// engine keeps its free buffers in the kernel's ring instead.
/// </summary>
internal sealed unsafe class BufferPool : IDisposable
{
    private readonly byte* _slab;
    private readonly PooledBuffer[] _buffers;
    private readonly Lock _gate = new();
    private readonly int[] _free;
    private int _freeCount;

    /// <summary>Buffers the user holds; the slab outlives the port until the last one comes back.</summary>
    private int _lent;
    private int _disposed;
    private bool _released;

    public BufferPool(PortCore owner, int bufferSize, int count)
    {
        Owner = owner;
        // SAFETY: freed once, by Dispose, after the engine stopped using every buffer.
        _slab = (byte*)NativeMemory.AlignedAlloc((nuint)bufferSize * (nuint)count, (nuint)Environment.SystemPageSize);
        _buffers = new PooledBuffer[count];
        _free = new int[count];
        for (int id = 0; id < count; id++)
        {
            _buffers[id] = new PooledBuffer(this, (ushort)id, _slab + ((nint)id * bufferSize), bufferSize);
            _free[id] = count - 1 - id;
        }

        _freeCount = count;
    }

    /// <summary>The port whose pooled receives lend these buffers.</summary>
    public PortCore Owner { get; }

    public int Count => _buffers.Length;

    public PooledBuffer this[int id] => _buffers[id];

    public bool TryRent(out PooledBuffer buffer)
    {
        lock (_gate)
        {
            if (_freeCount == 0)
            {
                buffer = null!;
                return false;
            }

            buffer = _buffers[_free[--_freeCount]];
            return true;
        }
    }

    public void Return(PooledBuffer buffer)
    {
        lock (_gate)
        {
            _free[_freeCount++] = buffer.Id;
        }
    }

    public bool HasFree => Volatile.Read(ref _freeCount) > 0;

    /// <summary>Buffers the user holds now.</summary>
    public int Lent => Volatile.Read(ref _lent);

    /// <summary>Frees the slab now, or when the last lent buffer comes back: lent data stays readable until then.</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _disposed, 1); // A full fence before _lent is read: see CountLend.
        lock (_gate)
        {
            ReleaseIfUnused();
        }
    }

    /// <summary>Whether the slab was freed (the pool is disposed and no buffer is lent).</summary>
    public bool IsReleased
    {
        get
        {
            lock (_gate)
            {
                return _released;
            }
        }
    }

    public void CountLend(int change)
    {
        // Whichever of this and Dispose comes second sees the other's write (both are full fences).
        if (Interlocked.Add(ref _lent, change) == 0 && Volatile.Read(ref _disposed) != 0)
        {
            lock (_gate)
            {
                ReleaseIfUnused();
            }
        }
    }

    private void ReleaseIfUnused()
    {
        if (Volatile.Read(ref _disposed) != 0 && Volatile.Read(ref _lent) == 0 && !_released)
        {
            _released = true;
            NativeMemory.AlignedFree(_slab);
        }
    }
}

/// <summary>
/// One buffer of a <see cref="BufferPool"/>; its <see cref="Memory{T}"/> needs no allocation and no pin. Each time it is
/// lent to the user it gets a new lease, which the completion carries, so that a return made with an old completion
/// (a second return after the buffer was lent again) is refused instead of putting the buffer in the free list twice.
/// </summary>
internal sealed unsafe class PooledBuffer(BufferPool pool, ushort id, byte* address, int length) : MemoryManager<byte>
{
    /// <summary>The lease in the high bits, whether it is lent in the lowest bit.</summary>
    private int _state;

    public BufferPool Pool { get; } = pool;

    public ushort Id { get; } = id;

    public byte* Address { get; } = address;

    public int Length { get; } = length;

    /// <summary>Hands the buffer to the user under a new lease, which the caller puts in the completion.</summary>
    public uint Lend()
    {
        // Only the operation that received into the buffer lends it, so no other lend races this one; a return of an
        // earlier lease may, and then fails its exchange.
        int state = Volatile.Read(ref _state);
        int lent = ((state >> 1) + 1) << 1 | 1;
        Interlocked.Exchange(ref _state, lent);
        Pool.CountLend(1);
        return (uint)lent >> 1;
    }

    /// <summary>Takes the buffer back from the user under <paramref name="lease"/>; false if that lease is over (a second return).</summary>
    public bool TryTakeBack(uint lease)
    {
        int lent = (int)(lease << 1) | 1;
        if (Interlocked.CompareExchange(ref _state, lent & ~1, lent) != lent)
        {
            return false;
        }

        Pool.CountLend(-1);
        return true;
    }

    public override Span<byte> GetSpan() => new(Address, Length);

    // Native memory never moves: pinning is a no-op.
    public override MemoryHandle Pin(int elementIndex = 0) => new(Address + elementIndex);

    public override void Unpin()
    {
    }

    protected override void Dispose(bool disposing)
    {
    }
}
