namespace SockNotify;

/// <summary>Settings for a <see cref="CompletionPort"/>; every default suits a server.</summary>
public sealed class CompletionPortOptions
{
    /// <summary>
    /// Which kernel interface performs overlapped operations. Defaults to <see cref="CompletionPortBackend.Automatic"/>:
    /// io_uring when the kernel offers it and the environment variable <c>SOCKNOTIFY_IO_URING</c> is not <c>0</c>,
    /// else epoll.
    /// </summary>
    public CompletionPortBackend Backend { get; set; } = CompletionPortBackend.Automatic;

    /// <summary>The size in bytes of each buffer <see cref="CompletionPort.ReceivePooled"/> draws from. Defaults to 4096.</summary>
    public int PooledBufferSize { get; set; } = 4096;

    /// <summary>
    /// How many pooled buffers the port has, a power of two from 1 to 32768. Defaults to 1024 (4 MiB of address space,
    /// resident only once used). A pooled receive that finds every buffer lent waits for one to be returned.
    /// </summary>
    public int PooledBufferCount { get; set; } = 1024;

    /// <summary>io_uring submission queue size (tests shrink the rings to force overflow).</summary>
    internal uint RingSubmissionEntries { get; set; } = 1024;

    /// <summary>io_uring completion queue size: room for many completions per submitted batch.</summary>
    internal uint RingCompletionEntries { get; set; } = 8192;
}

/// <summary>The kernel interface behind a port's overlapped operations.</summary>
public enum CompletionPortBackend
{
    /// <summary>
    /// Linux: io_uring when available and not disabled with <c>SOCKNOTIFY_IO_URING=0</c>, else epoll. Windows: Iocp.
    /// </summary>
    Automatic,

    /// <summary>io_uring: operations are submitted in batches and performed by the kernel.</summary>
    IoUring,

    /// <summary>epoll: each operation is a non-blocking system call made when its socket is ready.</summary>
    Epoll,

    /// <summary>
    /// Windows: the kernel's I/O completion port, with overlapped Winsock calls (the only backend on Windows, and what
    /// Automatic means there).
    /// </summary>
    Iocp,
}
