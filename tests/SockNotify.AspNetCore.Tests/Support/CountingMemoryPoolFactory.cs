using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>Pools that count the blocks rented and not yet returned, for Kestrel and the transport to draw pipe memory from.</summary>
internal sealed class CountingMemoryPoolFactory : IMemoryPoolFactory<byte>
{
    private int _outstanding;
    private int _rented;

    /// <summary>Blocks rented and not returned, over every pool made here.</summary>
    public int Outstanding => Volatile.Read(ref _outstanding);

    /// <summary>Blocks rented in all.</summary>
    public int Rented => Volatile.Read(ref _rented);

    public MemoryPool<byte> Create(MemoryPoolOptions? options = null) => new CountingPool(this);

    private sealed class CountingPool(CountingMemoryPoolFactory factory) : MemoryPool<byte>
    {
        public override int MaxBufferSize => 4096;

        public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
        {
            Interlocked.Increment(ref factory._outstanding);
            Interlocked.Increment(ref factory._rented);
            return new Block(factory, Math.Max(minBufferSize, MaxBufferSize));
        }

        protected override void Dispose(bool disposing)
        {
        }
    }

    private sealed class Block(CountingMemoryPoolFactory factory, int size) : IMemoryOwner<byte>
    {
        private byte[]? _array = GC.AllocateArray<byte>(size, pinned: true);

        public Memory<byte> Memory => _array ?? throw new ObjectDisposedException(nameof(Block));

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _array, null) is not null)
            {
                Interlocked.Decrement(ref factory._outstanding);
            }
        }
    }
}
