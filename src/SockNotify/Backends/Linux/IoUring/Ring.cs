using System.ComponentModel;
using System.Runtime.InteropServices;
using static SockNotify.Interop;
using static SockNotify.Interop.IoUring;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// One io_uring instance: its setup, the mapping of its rings, <c>io_uring_enter</c> and <c>io_uring_register</c>
/// (liburing's <c>setup.c</c>). The queues over the mapping are <see cref="Submissions"/> and <see cref="Completions"/>.
/// </summary>
internal sealed unsafe class Ring : IDisposable
{
    private readonly SafeFileDescriptorHandle _handle;
    private readonly byte* _rings;
    private readonly nuint _ringsSize;
    private readonly SubmissionEntry* _sqes;
    private readonly nuint _sqesSize;

    private Ring(int fd, in Parameters parameters, byte* rings, nuint ringsSize, SubmissionEntry* sqes, nuint sqesSize)
    {
        _handle = new SafeFileDescriptorHandle(fd);
        Fd = fd;
        _rings = rings;
        _ringsSize = ringsSize;
        _sqes = sqes;
        _sqesSize = sqesSize;
        Submissions = new SubmissionQueue(this, parameters, rings, sqes);
        Completions = new CompletionQueue(parameters, rings);
    }

    /// <summary>The ring's descriptor; valid until <see cref="Dispose"/> (tests aim faults at it).</summary>
    internal int Fd { get; }

    public SubmissionQueue Submissions { get; }

    public CompletionQueue Completions { get; }

    /// <summary>
    /// Sets up a ring with cooperative task running, or says why not (the kernel refused io_uring or lacks a feature
    /// this engine needs), so that the port can fall back to epoll.
    /// </summary>
    public static bool TryCreate(uint submissionEntries, uint completionEntries, out Ring? ring, out string? refusal)
    {
        ring = null;
        Parameters parameters = new()
        {
            // Cooperative task running: the kernel does not interrupt a busy thread to finish its operations, but flags
            // them (IORING_SQ_TASKRUN) for the thread's next wait to run. Measured with the bench (1,000 connections,
            // three rounds): 1.24x the C baseline's CPU per message with it, 1.35x without.
            Flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
            CqEntries = completionEntries,
        };
        // SAFETY: the kernel writes the parameters back into this stack struct during the call only.
        int fd = Setup(submissionEntries, &parameters);
        if (fd < 0)
        {
            refusal = $"io_uring_setup failed: {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
            return false;
        }

        const uint needed = IORING_FEAT_SINGLE_MMAP | IORING_FEAT_NODROP | IORING_FEAT_EXT_ARG;
        if ((parameters.Features & needed) != needed)
        {
            Interop.Close(fd);
            refusal = "the kernel's io_uring lacks single mmap, no-drop completions or extended wait arguments (Linux 5.11+).";
            return false;
        }

        // With SINGLE_MMAP one mapping holds both rings; it must cover the larger of the two.
        nuint ringsSize = Math.Max(
            parameters.SqOffsets.Array + (parameters.SqEntries * sizeof(uint)),
            parameters.CqOffsets.Cqes + (parameters.CqEntries * (nuint)sizeof(CompletionQueueEntry)));
        nuint sqesSize = parameters.SqEntries * (nuint)sizeof(SubmissionEntry);
        // SAFETY: the mappings are shared with the kernel for the ring's life and unmapped only by Dispose, after the
        // last reader; their sizes come from the kernel's own parameters.
        byte* rings = (byte*)Memory.Map(null, ringsSize, Memory.PROT_READ | Memory.PROT_WRITE,
            Memory.MAP_SHARED | Memory.MAP_POPULATE, fd, IORING_OFF_SQ_RING);
        SubmissionEntry* sqes = (SubmissionEntry*)Memory.Map(null, sqesSize, Memory.PROT_READ | Memory.PROT_WRITE,
            Memory.MAP_SHARED | Memory.MAP_POPULATE, fd, IORING_OFF_SQES);
        if (rings == (byte*)-1 || sqes == (SubmissionEntry*)-1)
        {
            refusal = $"mmap of the rings failed: {Marshal.GetPInvokeErrorMessage((int)LastErrno())}";
            if (rings != (byte*)-1)
            {
                Memory.Unmap(rings, ringsSize);
            }

            if (sqes != (SubmissionEntry*)-1)
            {
                Memory.Unmap(sqes, sqesSize);
            }

            Interop.Close(fd);
            return false;
        }

        ring = new Ring(fd, parameters, rings, ringsSize, sqes, sqesSize);
        refusal = null;
        return true;
    }

    /// <summary>
    /// <c>io_uring_enter</c>. An interruption, a timeout, or a kernel busy flushing completions (EINTR, ETIME, EBUSY,
    /// EAGAIN) returns normally: every caller loops back. Anything else is a bug or a dead ring, and throws.
    /// </summary>
    public void Enter(uint toSubmit, uint minComplete, uint flags, GetEventsArgument* argument)
    {
        nuint argumentSize = argument is null ? 0 : (nuint)sizeof(GetEventsArgument);
        if (Interop.IoUring.Enter(Fd, toSubmit, minComplete, flags, argument, argumentSize) >= 0)
        {
            return;
        }

        Errno errno = LastErrno();
        if (errno is not (Errno.EINTR or Errno.ETIME or Errno.EBUSY or Errno.EAGAIN))
        {
            throw new Win32Exception((int)errno, $"io_uring_enter failed: {Marshal.GetPInvokeErrorMessage((int)errno)}");
        }
    }

    /// <summary><c>io_uring_register</c>: the kernel's result, or -1 with errno set.</summary>
    public int Register(uint opcode, void* argument, uint count) => Interop.IoUring.Register(Fd, opcode, argument, count);

    /// <summary>Unmaps the rings and closes the ring; the kernel then drops every registration made on it.</summary>
    public void Dispose()
    {
        Memory.Unmap(_sqes, _sqesSize);
        Memory.Unmap(_rings, _ringsSize);
        _handle.Dispose();
    }
}
