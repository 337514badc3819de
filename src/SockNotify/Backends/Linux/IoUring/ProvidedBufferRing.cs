using System.Runtime.InteropServices;
using SockNotify.Internal;
using static SockNotify.Interop;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// The pool's free buffers, offered to the kernel in a provided buffer ring (<c>IORING_REGISTER_PBUF_RING</c>), from
/// which a pooled receive takes one only when data arrives. Buffers are added under <see cref="_gate"/>; the kernel
/// takes them, and names each in the completion that used it.
/// </summary>
internal sealed unsafe class ProvidedBufferRing
{
    /// <summary>The buffer group pooled receives select from.</summary>
    public const ushort Group = 0;

    private readonly ProvidedBuffer* _entries;
    private readonly int _count;
    private readonly Lock _gate = new();
    private ushort _tail;
    private int _inRing;

    private ProvidedBufferRing(ProvidedBuffer* entries, int count)
    {
        _entries = entries;
        _count = count;
    }

    /// <summary>Whether the kernel could pick a buffer now (a hint, exact only between reaps).</summary>
    public bool HasFree => Volatile.Read(ref _inRing) > 0;

    /// <summary>Registers an empty ring of <paramref name="count"/> entries (a power of two), or says why not.</summary>
    public static ProvidedBufferRing? TryRegister(Ring ring, int count, out string? refusal)
    {
        nuint size = (nuint)count * (nuint)sizeof(ProvidedBuffer);
        // SAFETY: page-aligned as the kernel requires, and freed only by Free, once the kernel can no longer read it.
        ProvidedBuffer* entries = (ProvidedBuffer*)NativeMemory.AlignedAlloc(size, (nuint)Environment.SystemPageSize);
        NativeMemory.Clear(entries, size);
        BufferRingRegistration registration = new() { RingAddress = (ulong)entries, RingEntries = (uint)count, GroupId = Group };
        if (ring.Register(IORING_REGISTER_PBUF_RING, &registration, 1) < 0)
        {
            refusal = $"registering a provided buffer ring failed (Linux 5.19+): {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
            NativeMemory.AlignedFree(entries);
            return null;
        }

        refusal = null;
        return new ProvidedBufferRing(entries, count);
    }

    /// <summary>Offers a buffer to the kernel.</summary>
    public void Add(PooledBuffer buffer)
    {
        lock (_gate)
        {
            // Field by field: the first entry's last field is the ring's tail and must not be overwritten.
            // SAFETY: the index is masked into the ring, and the kernel reads an entry only once the tail passes it.
            ProvidedBuffer* slot = &_entries[_tail & (_count - 1)];
            slot->Address = (ulong)buffer.Address;
            slot->Length = (uint)buffer.Length;
            slot->BufferId = buffer.Id;
            _tail++;
            Volatile.Write(ref _entries->Reserved, _tail); // Release store: publishes the entry to the kernel.
            Interlocked.Increment(ref _inRing);
        }
    }

    /// <summary>Counts a buffer the kernel took (a completion named it).</summary>
    public void Took() => Interlocked.Decrement(ref _inRing);

    /// <summary>Frees the ring's memory: only once the ring is closed and the kernel cannot read it.</summary>
    public void Free() => NativeMemory.AlignedFree(_entries);
}
