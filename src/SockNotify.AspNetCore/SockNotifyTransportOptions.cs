using System.Net;
using System.Net.Sockets;

namespace SockNotify.AspNetCore;

/// <summary>
/// Options for the SockNotify transport. Where a concept is shared with Kestrel's Sockets transport
/// (<c>SocketTransportOptions</c>), the name and the default are the same.
/// </summary>
public class SockNotifyTransportOptions
{
    private const string FinOnErrorSwitch = "Microsoft.AspNetCore.Server.Kestrel.FinOnError";

    /// <summary>
    /// Which kernel interface performs the operations.
    /// </summary>
    /// <remarks>
    /// Defaults to <see cref="CompletionPortBackend.Automatic"/>: io_uring when the kernel offers it and the environment
    /// variable <c>SOCKNOTIFY_IO_URING</c> is not <c>0</c>, else epoll.
    /// </remarks>
    public CompletionPortBackend Backend { get; set; } = CompletionPortBackend.Automatic;

    /// <summary>
    /// The number of I/O queues: each is one <see cref="CompletionPort"/> with one thread of its own that dequeues its
    /// completions and runs the transport's side of the connections assigned to it (round robin). At least 1: unlike
    /// the Sockets transport's, 0 does not mean the thread pool (binding then throws).
    /// </summary>
    /// <remarks>
    /// Defaults to <see cref="Environment.ProcessorCount"/>, at most 16.
    /// </remarks>
    public int IOQueueCount { get; set; } = Math.Min(Environment.ProcessorCount, 16);

    /// <summary>
    /// How connections receive.
    /// </summary>
    /// <remarks>
    /// Defaults to <see cref="SockNotifyReceiveMode.Pooled"/>: idle connections hold no buffer.
    /// </remarks>
    public SockNotifyReceiveMode ReceiveMode { get; set; } = SockNotifyReceiveMode.Pooled;

    /// <summary>
    /// The size in bytes of each buffer of a port's receive pool (<see cref="SockNotifyReceiveMode.Pooled"/>).
    /// </summary>
    /// <remarks>
    /// Defaults to 4096.
    /// </remarks>
    public int PooledBufferSize { get; set; } = 4096;

    /// <summary>
    /// How many buffers each port's receive pool has, a power of two from 1 to 32768. A buffer is lent only from the
    /// arrival of data until it is copied into the input pipe, so this bounds receives in progress, not connections.
    /// </summary>
    /// <remarks>
    /// Defaults to 1024 (4 MiB of address space per port, resident only once used).
    /// </remarks>
    public int PooledBufferCount { get; set; } = 1024;

    /// <summary>
    /// Set to false to enable Nagle's algorithm for all connections.
    /// </summary>
    /// <remarks>
    /// Defaults to true.
    /// </remarks>
    public bool NoDelay { get; set; } = true;

    /// <summary>
    /// The maximum length of the pending connection queue.
    /// </summary>
    /// <remarks>
    /// Defaults to 512 pending connections.
    /// </remarks>
    public int Backlog { get; set; } = 512;

    /// <summary>
    /// Gets or sets the maximum unconsumed incoming bytes the transport will buffer: receiving pauses at this size and
    /// resumes when the application has consumed half of it.
    /// <para>
    /// A value of <see langword="null"/> or 0 disables backpressure entirely allowing unlimited buffering.
    /// Unlimited server buffering is a security risk given untrusted clients.
    /// </para>
    /// </summary>
    /// <remarks>
    /// Defaults to 1 MiB.
    /// </remarks>
    public long? MaxReadBufferSize { get; set; } = 1024 * 1024;

    /// <summary>
    /// Gets or sets the maximum outgoing bytes the transport will buffer before applying write backpressure: the
    /// application's flushes wait at this size and resume when half of it was sent.
    /// <para>
    /// A value of <see langword="null"/> or 0 disables backpressure entirely allowing unlimited buffering.
    /// Unlimited server buffering is a security risk given untrusted clients.
    /// </para>
    /// </summary>
    /// <remarks>
    /// Defaults to 64 KiB.
    /// </remarks>
    public long? MaxWriteBufferSize { get; set; } = 64 * 1024;

    /// <summary>
    /// Inline application continuations instead of dispatching them to the thread pool: the application then runs on
    /// the I/O queue's thread, which is why this is unsafe. The transport's own continuations always run on that thread.
    /// </summary>
    /// <remarks>
    /// This setting can make performance worse if there is expensive work that will end up holding onto the I/O thread
    /// for longer than needed (every connection of that queue waits meanwhile). Test to make sure it helps.
    /// </remarks>
    /// <remarks>
    /// Defaults to false.
    /// </remarks>
    public bool UnsafePreferInlineScheduling { get; set; }

    /// <summary>
    /// A function used to create a new <see cref="Socket"/> to listen with. If not set,
    /// <see cref="CreateDefaultBoundListenSocket"/> is used.
    /// </summary>
    /// <remarks>
    /// Implementors are expected to call <see cref="Socket.Bind"/> on the <see cref="Socket"/>. Please note that
    /// <see cref="CreateDefaultBoundListenSocket"/> calls <see cref="Socket.Bind"/> as part of its implementation, so
    /// implementors using this method do not need to call it again.
    /// </remarks>
    /// <remarks>
    /// Defaults to <see cref="CreateDefaultBoundListenSocket"/>.
    /// </remarks>
    public Func<EndPoint, Socket> CreateBoundListenSocket { get; set; } = CreateDefaultBoundListenSocket;

    /// <summary>
    /// Whether an abort, or a connection that fails, ends with FIN (a graceful close) rather than RST.
    /// </summary>
    /// <remarks>
    /// Defaults to false (RST, as Kestrel's Sockets transport does), or to the AppContext switch
    /// <c>Microsoft.AspNetCore.Server.Kestrel.FinOnError</c> when it is set.
    /// </remarks>
    public bool FinOnError { get; set; } = AppContext.TryGetSwitch(FinOnErrorSwitch, out bool finOnError) && finOnError;

    /// <summary>
    /// The clock of the listener's pause after a failed accept (out of descriptors or memory), so that tests can hold
    /// the pause and count the accepts made meanwhile. Internal: nothing else runs on it.
    /// </summary>
    /// <remarks>
    /// Defaults to <see cref="TimeProvider.System"/>.
    /// </remarks>
    internal TimeProvider TimeProvider { get; set; } = TimeProvider.System;

    /// <summary>
    /// Creates a TCP socket bound to <paramref name="endpoint"/> that a connection listener can listen with;
    /// <see cref="IPAddress.IPv6Any"/> is bound dual-mode, so that it takes IPv4 connections too, as Kestrel expects.
    /// </summary>
    /// <param name="endpoint">An <see cref="IPEndPoint"/>.</param>
    /// <returns>The bound socket, not yet listening.</returns>
    public static Socket CreateDefaultBoundListenSocket(EndPoint endpoint)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        Socket listenSocket = new(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endpoint is IPEndPoint ip && ip.Address.Equals(IPAddress.IPv6Any))
            {
                listenSocket.DualMode = true;
            }

            listenSocket.Bind(endpoint);
        }
        catch
        {
            listenSocket.Dispose();
            throw;
        }

        return listenSocket;
    }
}
