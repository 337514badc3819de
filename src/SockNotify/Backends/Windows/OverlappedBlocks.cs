using System.Runtime.InteropServices;
using static SockNotify.Interop.Kernel32;
using static SockNotify.Interop.Winsock;

namespace SockNotify.Backends.Windows;

/// <summary>
/// The native memory of one operation slot that the kernel reads and writes while the operation is in flight: its
/// OVERLAPPED first (so the packet's OVERLAPPED pointer is the block's), the token that names the operation's current
/// use, and what the Winsock call was given (WSABUFs, flags, the address length, AcceptEx's socket and addresses).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct OperationBlock
{
    public const int InlineBufferCount = 4;

    public NativeOverlapped Overlapped;

    /// <summary>The operation's <see cref="Internal.SlotToken"/> for this use: a packet finds its operation by it.</summary>
    public ulong Token;

    /// <summary>WSARecv's flags (in and out).</summary>
    public uint Flags;

    /// <summary>WSARecvFrom's address length (in and out).</summary>
    public int AddressLength;

    /// <summary>AcceptEx's accept socket until the Accept completes (then the completion carries it) or fails (closed).</summary>
    public nint AcceptSocket;

    /// <summary>WSABUFs for more than <see cref="InlineBufferCount"/> buffers, kept for the slot's later uses.</summary>
    public WsaBuffer* HeapBuffers;

    public int HeapBufferCapacity;

    public InlineBuffers Inline;

    public AcceptAddresses Addresses;

    [System.Runtime.CompilerServices.InlineArray(InlineBufferCount)]
    public struct InlineBuffers
    {
        private WsaBuffer _first;
    }

    [System.Runtime.CompilerServices.InlineArray(2 * AcceptAddressLength)]
    public struct AcceptAddresses
    {
        private byte _first;
    }
}

/// <summary>
/// One <see cref="OperationBlock"/> per operation slot, made on the slot's first use and kept for the port's life: an
/// operation object is recycled only after its completion packet was dequeued, so a block is never reused while the
/// kernel may still write into it. The blocks are freed at teardown only if the kernel let go of every operation
/// (<see cref="Free"/>); otherwise they are leaked rather than reused.
/// </summary>
internal sealed unsafe class OverlappedBlocks
{
    private readonly Lock _gate = new();
    private nint[] _blocks = new nint[16];

    /// <summary>The block of <paramref name="slot"/>; lock-free once made.</summary>
    public OperationBlock* Get(int slot)
    {
        nint[] blocks = Volatile.Read(ref _blocks);
        if (slot < blocks.Length && blocks[slot] != 0)
        {
            return (OperationBlock*)blocks[slot];
        }

        lock (_gate)
        {
            if (slot >= _blocks.Length)
            {
                nint[] grown = new nint[Math.Max(slot + 1, _blocks.Length * 2)];
                Array.Copy(_blocks, grown, _blocks.Length);
                Volatile.Write(ref _blocks, grown); // Published after the copy, for lock-free readers.
            }

            if (_blocks[slot] == 0)
            {
                // SAFETY: zeroed, and freed only by Free, once no kernel call can use it.
                _blocks[slot] = (nint)NativeMemory.AllocZeroed((nuint)sizeof(OperationBlock));
            }

            return (OperationBlock*)_blocks[slot];
        }
    }

    /// <summary>WSABUFs for <paramref name="count"/> buffers in the block: inline, or the slot's heap array grown to fit.</summary>
    public static WsaBuffer* Buffers(OperationBlock* block, int count)
    {
        if (count <= OperationBlock.InlineBufferCount)
        {
            return (WsaBuffer*)&block->Inline;
        }

        if (count > block->HeapBufferCapacity)
        {
            NativeMemory.Free(block->HeapBuffers);
            block->HeapBuffers = (WsaBuffer*)NativeMemory.Alloc((nuint)count, (nuint)sizeof(WsaBuffer));
            block->HeapBufferCapacity = count;
        }

        return block->HeapBuffers;
    }

    /// <summary>Frees every block; only once no kernel call can use any of them.</summary>
    public void Free()
    {
        lock (_gate)
        {
            foreach (nint block in _blocks)
            {
                if (block != 0)
                {
                    NativeMemory.Free(((OperationBlock*)block)->HeapBuffers);
                    NativeMemory.Free((void*)block);
                }
            }

            _blocks = [];
        }
    }
}
