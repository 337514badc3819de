using System.Runtime.InteropServices;
using static SockNotify.Interop;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// The ring's table of registered sockets (<c>IORING_REGISTER_FILES2</c>, sparse). A socket sits at its association's
/// slot, so an entry written now and submitted later names that slot, never a descriptor number another socket may
/// reuse, and the ring's reference keeps a socket the user disposed open until the port lets it go.
/// </summary>
internal sealed unsafe class FixedFileTable
{
    private readonly Ring _ring;

    private FixedFileTable(Ring ring, uint size)
    {
        _ring = ring;
        Size = size;
    }

    public uint Size { get; }

    /// <summary>Registers an empty table sized to the process's descriptor limit (the kernel's own bound), or says why not.</summary>
    public static FixedFileTable? TryRegister(Ring ring, out string? refusal)
    {
        uint size = TableSize();
        ResourceRegistration files = new() { Count = size, Flags = IORING_RSRC_REGISTER_SPARSE };
        if (ring.Register(IORING_REGISTER_FILES2, &files, (uint)sizeof(ResourceRegistration)) < 0)
        {
            refusal = $"registering a sparse file table failed (Linux 5.19+): {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
            return null;
        }

        refusal = null;
        return new FixedFileTable(ring, size);
    }

    /// <summary>Puts <paramref name="fd"/> at <paramref name="slot"/>, or empties the slot with -1; false if the kernel refused.</summary>
    public bool Update(int slot, int fd)
    {
        // SAFETY: the kernel reads the one descriptor through this pointer during the call only.
        FilesUpdate update = new() { Offset = (uint)slot, Fds = (ulong)&fd };
        return _ring.Register(IORING_REGISTER_FILES_UPDATE, &update, 1) == 1;
    }

    private static uint TableSize()
    {
        Resources.Limit limit;
        uint size = Resources.GetLimit(Resources.RLIMIT_NOFILE, &limit) == 0 ? (uint)Math.Min(limit.Current, 1u << 20) : 1024;
        return Math.Max(size, 64);
    }
}
