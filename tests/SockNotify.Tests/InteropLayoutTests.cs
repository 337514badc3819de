using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static SockNotify.Interop.IoUring;
using static SockNotify.Interop.Socket;

namespace SockNotify.Tests;

// Every figure below was printed by a C program (sizeof/offsetof) compiled with gcc against the x86-64 headers:
// <linux/io_uring.h> and <linux/time_types.h> (linux-libc-dev 6.1), <sys/epoll.h>, <sys/socket.h>, <sys/uio.h>,
// <netinet/in.h> (glibc 2.36), and <asm-generic/errno-base.h> and <asm-generic/errno.h>.
// The kernel reads and writes these structures, so a wrong offset corrupts memory rather than failing a call.
public class InteropLayoutTests
{
    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);

    [Fact]
    public void Epoll_event_has_the_packed_x86_64_kernel_layout()
    {
        Assert.Equal(Architecture.X64, RuntimeInformation.ProcessArchitecture);
        Assert.Equal(12, Unsafe.SizeOf<Interop.Epoll.EpollEvent>());
        Assert.Equal(0, Offset<Interop.Epoll.EpollEvent>(nameof(Interop.Epoll.EpollEvent.Events)));
        Assert.Equal(4, Offset<Interop.Epoll.EpollEvent>(nameof(Interop.Epoll.EpollEvent.Data)));
    }

    [Fact]
    public void Io_uring_params_is_120_bytes_with_the_sq_and_cq_offsets_at_40_and_80()
    {
        Assert.Equal(120, Unsafe.SizeOf<Parameters>());
        Assert.Equal(0, Offset<Parameters>(nameof(Parameters.SqEntries)));
        Assert.Equal(4, Offset<Parameters>(nameof(Parameters.CqEntries)));
        Assert.Equal(8, Offset<Parameters>(nameof(Parameters.Flags)));
        Assert.Equal(12, Offset<Parameters>(nameof(Parameters.SqThreadCpu)));
        Assert.Equal(16, Offset<Parameters>(nameof(Parameters.SqThreadIdle)));
        Assert.Equal(20, Offset<Parameters>(nameof(Parameters.Features)));
        Assert.Equal(24, Offset<Parameters>(nameof(Parameters.WqFd)));
        Assert.Equal(28, Offset<Parameters>(nameof(Parameters.Reserved)));
        Assert.Equal(40, Offset<Parameters>(nameof(Parameters.SqOffsets)));
        Assert.Equal(80, Offset<Parameters>(nameof(Parameters.CqOffsets)));
    }

    [Fact]
    public void Io_sqring_offsets_is_40_bytes_with_the_header_field_offsets()
    {
        Assert.Equal(40, Unsafe.SizeOf<SubmissionRingOffsets>());
        Assert.Equal(0, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.Head)));
        Assert.Equal(4, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.Tail)));
        Assert.Equal(8, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.RingMask)));
        Assert.Equal(12, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.RingEntries)));
        Assert.Equal(16, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.Flags)));
        Assert.Equal(20, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.Dropped)));
        Assert.Equal(24, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.Array)));
        Assert.Equal(28, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.Reserved1)));
        Assert.Equal(32, Offset<SubmissionRingOffsets>(nameof(SubmissionRingOffsets.UserAddress))); // resv2 in 6.1
    }

    [Fact]
    public void Io_cqring_offsets_is_40_bytes_with_the_header_field_offsets()
    {
        Assert.Equal(40, Unsafe.SizeOf<CompletionRingOffsets>());
        Assert.Equal(0, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.Head)));
        Assert.Equal(4, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.Tail)));
        Assert.Equal(8, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.RingMask)));
        Assert.Equal(12, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.RingEntries)));
        Assert.Equal(16, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.Overflow)));
        Assert.Equal(20, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.Cqes)));
        Assert.Equal(24, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.Flags)));
        Assert.Equal(28, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.Reserved1)));
        Assert.Equal(32, Offset<CompletionRingOffsets>(nameof(CompletionRingOffsets.UserAddress))); // resv2 in 6.1
    }

    [Fact]
    public void Io_uring_sqe_is_64_bytes_with_every_field_where_the_header_puts_it()
    {
        Assert.Equal(64, Unsafe.SizeOf<SubmissionEntry>());
        Assert.Equal(0, Offset<SubmissionEntry>(nameof(SubmissionEntry.Opcode)));
        Assert.Equal(1, Offset<SubmissionEntry>(nameof(SubmissionEntry.Flags)));
        Assert.Equal(2, Offset<SubmissionEntry>(nameof(SubmissionEntry.IoPriority)));
        Assert.Equal(4, Offset<SubmissionEntry>(nameof(SubmissionEntry.Fd)));
        Assert.Equal(8, Offset<SubmissionEntry>(nameof(SubmissionEntry.Offset)));
        Assert.Equal(16, Offset<SubmissionEntry>(nameof(SubmissionEntry.Address)));
        Assert.Equal(24, Offset<SubmissionEntry>(nameof(SubmissionEntry.Length)));
        Assert.Equal(28, Offset<SubmissionEntry>(nameof(SubmissionEntry.OpFlags))); // msg_flags, accept_flags, cancel_flags
        Assert.Equal(32, Offset<SubmissionEntry>(nameof(SubmissionEntry.UserData)));
        Assert.Equal(40, Offset<SubmissionEntry>(nameof(SubmissionEntry.BufferGroup)));
        Assert.Equal(42, Offset<SubmissionEntry>(nameof(SubmissionEntry.Personality)));
        Assert.Equal(44, Offset<SubmissionEntry>(nameof(SubmissionEntry.FileIndex)));
        Assert.Equal(48, Offset<SubmissionEntry>(nameof(SubmissionEntry.Address3)));
        Assert.Equal(56, Offset<SubmissionEntry>(nameof(SubmissionEntry.Reserved))); // __pad2
    }

    [Fact]
    public void Io_uring_cqe_is_16_bytes_with_user_data_result_and_flags()
    {
        Assert.Equal(16, Unsafe.SizeOf<CompletionQueueEntry>());
        Assert.Equal(0, Offset<CompletionQueueEntry>(nameof(CompletionQueueEntry.UserData)));
        Assert.Equal(8, Offset<CompletionQueueEntry>(nameof(CompletionQueueEntry.Result)));
        Assert.Equal(12, Offset<CompletionQueueEntry>(nameof(CompletionQueueEntry.Flags)));
    }

    [Fact]
    public void Io_uring_getevents_arg_is_24_bytes_with_the_timespec_pointer_at_16()
    {
        Assert.Equal(24, Unsafe.SizeOf<GetEventsArgument>());
        Assert.Equal(0, Offset<GetEventsArgument>(nameof(GetEventsArgument.SignalMask)));
        Assert.Equal(8, Offset<GetEventsArgument>(nameof(GetEventsArgument.SignalMaskSize)));
        Assert.Equal(12, Offset<GetEventsArgument>(nameof(GetEventsArgument.MinWaitMicroseconds))); // pad in 6.1
        Assert.Equal(16, Offset<GetEventsArgument>(nameof(GetEventsArgument.Timespec)));
    }

    [Fact]
    public void Kernel_timespec_is_two_64_bit_fields()
    {
        Assert.Equal(16, Unsafe.SizeOf<KernelTimespec>());
        Assert.Equal(0, Offset<KernelTimespec>(nameof(KernelTimespec.Seconds)));
        Assert.Equal(8, Offset<KernelTimespec>(nameof(KernelTimespec.Nanoseconds)));
    }

    [Fact]
    public void Io_uring_buf_reg_is_40_bytes_with_the_header_field_offsets()
    {
        Assert.Equal(40, Unsafe.SizeOf<BufferRingRegistration>());
        Assert.Equal(0, Offset<BufferRingRegistration>(nameof(BufferRingRegistration.RingAddress)));
        Assert.Equal(8, Offset<BufferRingRegistration>(nameof(BufferRingRegistration.RingEntries)));
        Assert.Equal(12, Offset<BufferRingRegistration>(nameof(BufferRingRegistration.GroupId)));
        Assert.Equal(14, Offset<BufferRingRegistration>(nameof(BufferRingRegistration.Flags))); // pad in 6.1
        Assert.Equal(16, Offset<BufferRingRegistration>(nameof(BufferRingRegistration.Reserved)));
    }

    [Fact]
    public void Io_uring_buf_is_16_bytes_and_its_reserved_field_is_where_the_ring_keeps_its_tail()
    {
        Assert.Equal(16, Unsafe.SizeOf<ProvidedBuffer>());
        Assert.Equal(0, Offset<ProvidedBuffer>(nameof(ProvidedBuffer.Address)));
        Assert.Equal(8, Offset<ProvidedBuffer>(nameof(ProvidedBuffer.Length)));
        Assert.Equal(12, Offset<ProvidedBuffer>(nameof(ProvidedBuffer.BufferId)));
        // offsetof(struct io_uring_buf_ring, tail) is 14 too: the tail overlays the first entry's resv.
        Assert.Equal(14, Offset<ProvidedBuffer>(nameof(ProvidedBuffer.Reserved)));
    }

    [Fact]
    public void Msghdr_has_the_56_byte_x86_64_layout_with_padding_after_the_name_length()
    {
        Assert.Equal(56, Unsafe.SizeOf<MessageHeader>());
        Assert.Equal(0, Offset<MessageHeader>(nameof(MessageHeader.Name)));
        Assert.Equal(8, Offset<MessageHeader>(nameof(MessageHeader.NameLength)));
        Assert.Equal(16, Offset<MessageHeader>(nameof(MessageHeader.IoVecs)));
        Assert.Equal(24, Offset<MessageHeader>(nameof(MessageHeader.IoVecCount)));
        Assert.Equal(32, Offset<MessageHeader>(nameof(MessageHeader.Control)));
        Assert.Equal(40, Offset<MessageHeader>(nameof(MessageHeader.ControlLength)));
        Assert.Equal(48, Offset<MessageHeader>(nameof(MessageHeader.Flags)));
    }

    [Fact]
    public void Iovec_is_a_16_byte_base_and_length()
    {
        Assert.Equal(16, Unsafe.SizeOf<IoVec>());
        Assert.Equal(0, Offset<IoVec>(nameof(IoVec.Base)));
        Assert.Equal(8, Offset<IoVec>(nameof(IoVec.Length)));
    }

    [Fact]
    public void Sockaddr_storage_size_is_the_128_bytes_of_struct_sockaddr_storage()
    {
        Assert.Equal(128, SockaddrStorageSize);
    }

    [Fact]
    public void Errno_members_have_the_x86_64_kernel_values()
    {
        (string, int)[] header =
        [
            ("EPERM", 1), ("EINTR", 4), ("EBADF", 9), ("EAGAIN", 11), ("ENOMEM", 12), ("EACCES", 13),
            ("EBUSY", 16), ("EINVAL", 22), ("ENFILE", 23), ("EMFILE", 24), ("ENOSPC", 28), ("EPIPE", 32), ("ENOSYS", 38),
            ("ETIME", 62), ("ENOTSOCK", 88), ("EDESTADDRREQ", 89), ("EMSGSIZE", 90), ("EPROTONOSUPPORT", 93),
            ("EOPNOTSUPP", 95), ("EAFNOSUPPORT", 97), ("EADDRINUSE", 98), ("EADDRNOTAVAIL", 99), ("ENETDOWN", 100),
            ("ENETUNREACH", 101), ("ENETRESET", 102), ("ECONNABORTED", 103), ("ECONNRESET", 104), ("ENOBUFS", 105),
            ("EISCONN", 106), ("ENOTCONN", 107), ("ESHUTDOWN", 108), ("ETIMEDOUT", 110), ("ECONNREFUSED", 111),
            ("EHOSTDOWN", 112), ("EHOSTUNREACH", 113), ("EALREADY", 114), ("EINPROGRESS", 115), ("ECANCELED", 125),
        ];

        Assert.Equal(header, Enum.GetValues<Interop.Errno>().Select(errno => (errno.ToString(), (int)errno)));
    }
}
