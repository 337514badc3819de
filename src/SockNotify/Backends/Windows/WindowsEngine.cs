using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.Versioning;
using SockNotify.Internal;
using static SockNotify.Interop.Kernel32;

namespace SockNotify.Backends.Windows;

/// <summary>
/// The Windows engine: the kernel's I/O completion port is the port (<see cref="IocpPort"/>).
/// <para><b>Packets.</b> Every packet's completion key names its kind (<see cref="PacketKind"/>). A posted entry (a
/// <see cref="CompletionPort.PostQueuedCompletionStatus"/>, a Remove notification, a completion that did not fit the
/// array of the dequeue that produced it) goes into <see cref="_posted"/> and one <see cref="PacketKind.Posted"/> packet
/// is queued for it; whoever dequeues a Posted packet takes the oldest entry. The queue and the packets are both FIFO
/// and one packet is posted per entry, so every entry is delivered exactly once, in queue order, and the kernel's FIFO
/// puts it behind everything queued before it: that is the order guarantee of the seam. A <see cref="PacketKind.Wake"/>
/// packet carries nothing: the wait that gets it returns what else it got (possibly nothing).</para>
/// <para><b>Threads and locks.</b> <see cref="Wait"/> runs on any number of threads at once; the kernel hands each
/// packet to one of them. The posted queue is lock-free. Nothing is held across the kernel wait; an operation's packet
/// is handled under its association's lock (see WindowsEngine.Operations.cs, which also states the lifetime of each
/// operation's OVERLAPPED memory).</para>
/// <para><b>Disposal.</b> The port's Dispose wakes one waiter; each waiter that finds the port disposed posts the wake
/// again and returns PortClosed, putting back what it had taken (dropped at teardown). <see cref="Quiesce"/> cancels
/// the operations in the kernel and dequeues their packets itself (other waiters may take some: they finish them too)
/// until none is owed, within a bound, passing on the wakes it met. Teardown (<see cref="Dispose"/>) runs after the
/// last call left the port, so no thread is inside <c>GetQueuedCompletionStatusEx</c> when the handle closes; closing
/// it discards the kernel's packets, the posted entries left are released with
/// <see cref="CompletionEntry.DropUndelivered"/>, and the OVERLAPPED blocks and the pool are freed only if no packet
/// was still owed.</para>
/// <para><b>Notifications</b> are not implemented yet: Add answers SystemError (the AFD poll emulation and the native
/// <c>ProcessSocketNotifications</c> are the next stage).</para>
/// </summary>
[SupportedOSPlatform("windows")]
internal sealed unsafe partial class WindowsEngine : PortEngine
{
    /// <summary>The most packets one wait takes, which bounds its stack use (32 bytes each).</summary>
    private const int MaxPacketsPerWait = 256;

    private readonly IocpPort _port;
    private readonly ConcurrentQueue<CompletionEntry> _posted = new();

    private WindowsEngine(PortCore port, CompletionPortOptions options, IocpPort iocp)
        : base(port, options)
    {
        _port = iocp;
    }

    public override CompletionPortBackend Backend => CompletionPortBackend.Iocp;

    public override bool HasFreeBuffer => Buffers.HasFree;

    // Posted entries waiting for their packet's dequeuer; completions wait in the kernel's port, which says nothing of
    // how many it holds.
    public override int QueueLength => _posted.Count;

    /// <summary>Makes the engine; the Iocp backend is the only one on Windows.</summary>
    public static new WindowsEngine Create(PortCore port, CompletionPortOptions options)
    {
        if (options.Backend is not (CompletionPortBackend.Automatic or CompletionPortBackend.Iocp))
        {
            throw new PlatformNotSupportedException($"The {options.Backend} backend is Linux's; Windows has Iocp only.");
        }

        if (!Environment.Is64BitProcess)
        {
            // OVERLAPPED, OVERLAPPED_ENTRY and WSABUF are declared with their 64-bit layouts.
            throw new PlatformNotSupportedException("SockNotify's CompletionPort runs in 64-bit processes only.");
        }

        IocpPort iocp = new();
        try
        {
            return new WindowsEngine(port, options, iocp);
        }
        catch
        {
            iocp.Dispose();
            throw;
        }
    }

    public override void Post(in CompletionEntry entry)
    {
        _posted.Enqueue(entry);
        _port.Post(PacketKind.Posted, 0, 0);
    }

    public override void Wake() => _port.Post(PacketKind.Wake, 0, 0);

    public override SocketNotifyResult Add(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        SocketNotifyResult.SystemError;

    public override SocketNotifyResult Modify(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        SocketNotifyResult.SystemError;

    public override SocketNotifyResult Disable(Registration registration) => SocketNotifyResult.SystemError;

    public override SocketNotifyResult Delete(Registration registration) => SocketNotifyResult.SystemError;

    public override void ReturnBuffer(PooledBuffer buffer) => buffer.Pool.Return(buffer);

    public override void Dispose()
    {
        _port.Dispose();
        while (_posted.TryDequeue(out CompletionEntry dropped))
        {
            dropped.DropUndelivered();
        }

        if (_drained)
        {
            // Otherwise the kernel may still write into some: leaking this memory is better than letting it be reused.
            _blocks.Free();
            CreatedBuffers?.Dispose();
        }
    }

    protected override int Wait(Span<CompletionEntry> entries, int timeoutMilliseconds)
    {
        if (Port.Lifetime.IsDisposed)
        {
            Wake(); // Pass the disposal wake on to the next waiter.
            return PortClosed;
        }

        Span<OverlappedEntry> packets = stackalloc OverlappedEntry[Math.Min(entries.Length, MaxPacketsPerWait)];
        int removed = _port.Dequeue(packets, timeoutMilliseconds);
        CompletionSink sink = new(entries, this);
        int handled = 0;
        try
        {
            for (; handled < removed; handled++)
            {
                Handle(packets[handled], ref sink);
            }
        }
        catch
        {
            // What was taken goes back, and so do the packets not yet looked at, as the kernel gave them.
            Requeue(entries[..sink.Count]);
            foreach (ref readonly OverlappedEntry packet in packets[(handled + 1)..removed])
            {
                _port.Post((PacketKind)packet.CompletionKey, packet.NumberOfBytesTransferred, (nint)packet.Overlapped);
            }

            throw;
        }

        if (Port.Lifetime.IsDisposed)
        {
            Requeue(entries[..sink.Count]); // Teardown releases them with the rest of the queue.
            Wake();
            return PortClosed;
        }

        return sink.Count;
    }

    private void Handle(in OverlappedEntry packet, ref CompletionSink sink)
    {
        switch ((PacketKind)packet.CompletionKey)
        {
            case PacketKind.Posted:
                // One entry per Posted packet, enqueued before its packet was posted: it is there.
                _posted.TryDequeue(out CompletionEntry entry);
                sink.Add(entry);
                break;
            case PacketKind.Wake:
                break;
            case PacketKind.Operation:
                HandleOperationPacket(packet, ref sink);
                break;
            default:
                throw new InvalidOperationException($"Unknown completion key {packet.CompletionKey}.");
        }
    }
}
