using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using static SockNotify.Interop.Kernel32;

namespace SockNotify.Backends.Windows;

/// <summary>
/// The kernel's I/O completion port (mio's <c>iocp.rs</c>): create, post, dequeue. Every packet's completion key
/// says what it is (<see cref="PacketKind"/>); the kernel carries keys and OVERLAPPED pointers and never looks inside,
/// so managed objects never reach it: they stay in the engine's tables under the tokens the packets carry.
/// <para>
/// The port is made with no concurrency limit: the kernel's limit (by default one running thread per processor) would
/// hold packets back from a waiting thread while others that dequeued earlier still run, which the port's contract (a
/// packet goes to any waiting thread) does not allow.
/// </para>
/// </summary>
[SupportedOSPlatform("windows")]
internal sealed unsafe class IocpPort : IDisposable
{
    private readonly SafeKernelHandle _handle;

    public IocpPort()
    {
        nint port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, 0, 0, uint.MaxValue);
        if (port == 0)
        {
            throw NewSystemException("CreateIoCompletionPort");
        }

        _handle = new SafeKernelHandle();
        Marshal.InitHandle(_handle, port);
    }

    /// <summary>For associating handles with this port; valid until <see cref="Dispose"/>.</summary>
    public SafeKernelHandle Handle => _handle;

    /// <summary>
    /// Dequeues up to <c>packets.Length</c> packets, waiting up to <paramref name="timeoutMilliseconds"/> (-1: forever,
    /// 0: poll); returns how many, 0 on timeout.
    /// </summary>
    public int Dequeue(Span<OverlappedEntry> packets, int timeoutMilliseconds)
    {
        // SAFETY: the span's memory outlives the call, and the kernel writes at most its length.
        fixed (OverlappedEntry* entries = packets)
        {
            if (GetQueuedCompletionStatusEx(_handle, entries, (uint)packets.Length, out uint removed, (uint)timeoutMilliseconds, alertable: false))
            {
                return (int)removed;
            }
        }

        int error = Marshal.GetLastPInvokeError();
        return error == Interop.Win32Error.WAIT_TIMEOUT ? 0 : throw NewSystemException("GetQueuedCompletionStatusEx", error);
    }

    /// <summary>Queues a packet; it carries <paramref name="payload"/> in its OVERLAPPED pointer, never dereferenced.</summary>
    public void Post(PacketKind kind, uint bytes, nint payload)
    {
        if (!PostQueuedCompletionStatus(_handle, bytes, (nuint)kind, payload))
        {
            // Only the kernel's nonpaged pool running out makes a post fail.
            throw NewSystemException("PostQueuedCompletionStatus");
        }
    }

    public void Dispose() => _handle.Dispose();

    internal static Win32Exception NewSystemException(string call) => NewSystemException(call, Marshal.GetLastPInvokeError());

    internal static Win32Exception NewSystemException(string call, int error) =>
        new(error, $"{call} failed: {Marshal.GetPInvokeErrorMessage(error)}");
}

/// <summary>What a packet is, by its completion key (the kernel hands the key back unchanged).</summary>
internal enum PacketKind : uint
{
    /// <summary>Never used: a zero key is what a stray association would carry.</summary>
    None,

    /// <summary>An overlapped operation of an associated socket finished; the OVERLAPPED is the operation's.</summary>
    Operation,

    /// <summary>A posted entry: the next one of the engine's posted queue.</summary>
    Posted,

    /// <summary>A wake: makes one waiter return, carrying nothing.</summary>
    Wake,

    /// <summary>An AFD poll finished; the OVERLAPPED is the poll's (the notification emulation).</summary>
    AfdPoll,
}
