using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using static SockNotify.Interop.Socket;

namespace SockNotify.Internal;

internal enum OperationKind : byte
{
    Accept,
    Connect,
    Receive,
    ReceivePooled,
    ReceiveMessage,
    Send,
    SendMessage,
}

/// <summary>
/// Where an operation is in its life. Every change is made under its association's lock, except the moves to and from
/// <see cref="Free"/>, made by the table that rents and recycles it; so a reader holding that lock sees a stable state.
/// </summary>
internal enum OperationState : byte
{
    /// <summary>In the lookaside list: on no side's list, and no token finds it.</summary>
    Free,

    /// <summary>
    /// Started and on its side's list, not in the kernel: behind an earlier operation of its side, waiting for
    /// readiness (epoll), or an Accept waiting for a connection. Whoever holds the association's lock may finish it.
    /// </summary>
    Pending,

    /// <summary>
    /// A pooled receive that found no free buffer: on its side's list and on the parked queue under its token, not in
    /// the kernel. A returned buffer resumes it, or a cancellation finishes it.
    /// </summary>
    WaitingForBuffer,

    /// <summary>In the kernel: exactly one final report will come for it, and only that report finishes it.</summary>
    InKernel,

    /// <summary>In the kernel with a cancellation requested; its final report still finishes it (with its result if it won).</summary>
    InKernelCancelling,
}

/// <summary>
/// One started overlapped operation: the .NET shape of the seed's OVERLAPPEDPLUS. It carries the opcode, the pinned
/// buffers, the native structures the kernel reads and writes (msghdr, iovecs, socket address) and the user's context,
/// and it is recycled through <see cref="OperationTable"/> (the seed's lookaside list), so that starting an operation
/// allocates nothing once the table has warmed up.
/// <para>
/// Lifetime (<see cref="OperationState"/>): rented, filled, added to its association's list and handed to the engine;
/// it leaves the list exactly once, in <see cref="OperationManager.Finish"/>, when its completion is built (success,
/// error or OperationAborted), and is then reset and returned (a start the engine refused is taken back the same way,
/// with no completion). Its token changes on every rent, so a late kernel report
/// for an earlier use finds nothing.
/// </para>
/// </summary>
internal sealed unsafe class Operation
{
    private const int MessageOffset = 0;
    private const int InlineIoVecOffset = 64;
    private const int InlineIoVecCount = 4;
    private const int AddressOffset = 128;
    private const int NativeSize = AddressOffset + SockaddrStorageSize;

    /// <summary>The msghdr, iovecs and socket address: allocated on first need, so a plain receive carries none.</summary>
    private byte* _native;
    private MemoryHandle[] _pins = [];
    private int _pinCount;
    private IoVec* _heapIoVecs;
    private int _heapIoVecCapacity;

    public Operation(int slot) => Slot = slot;

    public int Slot { get; }

    public uint Generation { get; set; }

    /// <summary>The kernel's user data for this use.</summary>
    public SlotToken Token => SlotToken.For(Slot, Generation);

    public OperationState State { get; set; }

    public OperationKind Kind { get; set; }

    public Association Owner { get; set; } = null!;

    public object? Context { get; set; }

    /// <summary>The flags for the system call (MSG_*).</summary>
    public int MessageFlags { get; set; }

    /// <summary>Receive, Send: the pinned buffer still to transfer (a send advances it as bytes go).</summary>
    public byte* Buffer { get; set; }

    public int Length { get; set; }

    public int Transferred { get; set; }

    /// <summary>ReceiveMessage: where the sender's address goes (may be null for a vectored receive).</summary>
    public SocketAddress? ReceivedAddress { get; set; }

    /// <summary>Connect, SendMessage: the length of the address in <see cref="AddressBuffer"/>; 0 for none.</summary>
    public int AddressLength { get; set; }

    public PooledBuffer? PooledBuffer { get; set; }

    /// <summary>Accept: the connection's descriptor, wrapped into a <see cref="Socket"/> only when delivered (-1: none).</summary>
    public int AcceptedDescriptor { get; private set; } = -1;

    public SocketError Error { get; set; }

    /// <summary>Bits the engine keeps about this use of the operation (its own meaning per engine); cleared at every rent.</summary>
    public byte EngineFlags { get; set; }

    public Operation? Previous { get; set; }

    public Operation? Next { get; set; }

    public bool IsSendSide => Kind is OperationKind.Connect or OperationKind.Send or OperationKind.SendMessage;

    public MessageHeader* Message => (MessageHeader*)(Native + MessageOffset);

    public byte* AddressBuffer => Native + AddressOffset;

    // SAFETY: freed once, by FreeNative, after the engine has stopped using every operation.
    private byte* Native => _native is not null ? _native : _native = (byte*)NativeMemory.AllocZeroed(NativeSize);

    /// <summary>Pins <paramref name="memory"/> until <see cref="Reset"/> and returns its address.</summary>
    public byte* Pin(ReadOnlyMemory<byte> memory)
    {
        if (_pinCount == _pins.Length)
        {
            Array.Resize(ref _pins, Math.Max(1, _pins.Length * 2));
        }

        MemoryHandle pin = memory.Pin();
        _pins[_pinCount++] = pin;
        return (byte*)pin.Pointer;
    }

    /// <summary>Pins the one buffer of a Receive or Send.</summary>
    public void SetBuffer(ReadOnlyMemory<byte> memory)
    {
        Buffer = Pin(memory);
        Length = memory.Length;
    }

    /// <summary>Pins every buffer and points the message header's iovecs at them.</summary>
    public void SetIoVecs(ReadOnlySpan<ReadOnlyMemory<byte>> buffers)
    {
        IoVec* vectors = (IoVec*)(Native + InlineIoVecOffset);
        if (buffers.Length > InlineIoVecCount)
        {
            if (buffers.Length > _heapIoVecCapacity)
            {
                NativeMemory.Free(_heapIoVecs);
                _heapIoVecs = (IoVec*)NativeMemory.Alloc((nuint)buffers.Length, (nuint)sizeof(IoVec));
                _heapIoVecCapacity = buffers.Length;
            }

            vectors = _heapIoVecs;
        }

        for (int i = 0; i < buffers.Length; i++)
        {
            vectors[i].Base = Pin(buffers[i]);
            vectors[i].Length = (nuint)buffers[i].Length;
        }

        Message->IoVecs = vectors;
        Message->IoVecCount = (nuint)buffers.Length;
    }

    /// <summary>
    /// Counts <paramref name="sent"/> more bytes of a Send or SendMessage and moves its buffer or iovecs past them: true
    /// while bytes remain. A stream send completes only once every byte is in the kernel (or on an error), as Winsock's
    /// does, so an engine whose send went in part sends the rest.
    /// </summary>
    public bool ConsumeSent(int sent)
    {
        Transferred += sent;
        if (Kind == OperationKind.Send)
        {
            Buffer += sent;
            Length -= sent;
            return Length > 0;
        }

        MessageHeader* message = Message;
        nuint left = (nuint)sent;
        while (message->IoVecCount > 0)
        {
            IoVec* first = message->IoVecs;
            if (left < first->Length)
            {
                first->Base += left;
                first->Length -= left;
                return true;
            }

            left -= first->Length;
            message->IoVecs++;
            message->IoVecCount--;
        }

        return false;
    }

    /// <summary>Points the message header at the operation's address buffer (<paramref name="length"/> bytes, or none).</summary>
    public void SetMessageAddress(int length)
    {
        Message->Name = length == 0 ? null : AddressBuffer;
        Message->NameLength = (uint)length;
    }

    /// <summary>The completion entry for this operation's outcome; <paramref name="lease"/> is its pooled buffer's.</summary>
    public CompletionEntry ToEntry(uint lease)
    {
        if (Kind == OperationKind.ReceiveMessage && Error == SocketError.Success)
        {
            if (ReceivedAddress is { } address)
            {
                int length = Math.Min((int)Message->NameLength, address.Buffer.Length);
                new ReadOnlySpan<byte>(AddressBuffer, length).CopyTo(address.Buffer.Span);
                address.Size = length;
            }

            if ((Message->Flags & MSG_TRUNC) != 0)
            {
                // The datagram was longer than the buffers: the start arrived and the rest is lost, which Winsock
                // (WSAEMSGSIZE) and .NET report as an error with the bytes that did arrive.
                Error = SocketError.MessageSize;
            }
        }

        return AcceptedDescriptor >= 0
            ? CompletionEntry.ForAcceptedDescriptor(Owner.CompletionKey, Context, AcceptedDescriptor)
            : new CompletionEntry(Owner.CompletionKey, (uint)Transferred, Context, Error, PooledBuffer, lease);
    }

    /// <summary>
    /// Completes an Accept with the descriptor accept4 or io_uring returned (non-blocking). The descriptor travels in
    /// the completion entry, and the dequeuing thread wraps it into a Socket with no lock held (see
    /// <see cref="CompletionEntry.WithAcceptedSocket"/>): wrapping makes system calls, which must not serialize the
    /// reaping of every other completion in an accept storm.
    /// </summary>
    public void SetAccepted(int fd) => AcceptedDescriptor = fd;

    /// <summary>Releases the pins and drops every reference, so a recycled operation keeps nothing alive.</summary>
    public void Reset()
    {
        for (int i = 0; i < _pinCount; i++)
        {
            _pins[i].Dispose();
            _pins[i] = default;
        }

        _pinCount = 0;
        Owner = null!;
        Context = null;
        Buffer = null;
        Length = 0;
        Transferred = 0;
        ReceivedAddress = null;
        AddressLength = 0;
        PooledBuffer = null;
        AcceptedDescriptor = -1;
        Error = SocketError.Success;
        EngineFlags = 0;
        State = OperationState.Free;
        MessageFlags = 0;
        if (_native is not null)
        {
            *Message = default;
        }
    }

    /// <summary>Frees the native memory. Only when no kernel call can still use it.</summary>
    public void FreeNative()
    {
        NativeMemory.Free(_heapIoVecs);
        NativeMemory.Free(_native);
    }
}
