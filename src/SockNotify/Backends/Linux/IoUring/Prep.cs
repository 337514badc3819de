using static SockNotify.Interop.IoUring;
using static SockNotify.Interop.Socket;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// One preparation per opcode, each filling a zeroed submission entry (liburing's <c>io_uring_prep_*</c>). Sockets are
/// named by descriptor, held open until the kernel takes the entry (see <see cref="SubmissionQueue"/>).
/// </summary>
internal static unsafe class Prep
{
    /// <summary>A multishot accept: one completion per connection (non-blocking, close-on-exec) until it ends.</summary>
    public static void MultishotAccept(SubmissionEntry* entry, int fd, ulong userData)
    {
        Socket(entry, IORING_OP_ACCEPT, fd, userData);
        entry->IoPriority = IORING_ACCEPT_MULTISHOT;
        entry->OpFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    }

    public static void Connect(SubmissionEntry* entry, int fd, byte* address, int addressLength, ulong userData)
    {
        Socket(entry, IORING_OP_CONNECT, fd, userData);
        entry->Address = (ulong)address;
        entry->Offset = (ulong)addressLength;
    }

    public static void Receive(SubmissionEntry* entry, int fd, byte* buffer, int length, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_RECV, fd, userData);
        entry->Address = (ulong)buffer;
        entry->Length = (uint)length;
        entry->OpFlags = (uint)flags;
    }

    /// <summary>
    /// A receive into a buffer the kernel picks from <paramref name="bufferGroup"/>. The kernel tries at once, and
    /// fails with ENOBUFS if the group is empty then, data or not; <paramref name="pollFirst"/>
    /// (IORING_RECVSEND_POLL_FIRST) makes it wait for data before it picks, so that ENOBUFS means data is waiting.
    /// </summary>
    public static void ReceiveSelectBuffer(
        SubmissionEntry* entry, int fd, ushort bufferGroup, int length, int flags, bool pollFirst, ulong userData)
    {
        Socket(entry, IORING_OP_RECV, fd, userData);
        entry->IoPriority = pollFirst ? IORING_RECVSEND_POLL_FIRST : (ushort)0;
        entry->Flags |= IOSQE_BUFFER_SELECT;
        entry->BufferGroup = bufferGroup;
        entry->Length = (uint)length;
        entry->OpFlags = (uint)flags;
    }

    public static void ReceiveMessage(SubmissionEntry* entry, int fd, MessageHeader* message, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_RECVMSG, fd, userData);
        entry->Address = (ulong)message;
        entry->OpFlags = (uint)flags;
    }

    // MSG_WAITALL makes the kernel finish a partial stream send itself, as Winsock's send completes.
    public static void Send(SubmissionEntry* entry, int fd, byte* buffer, int length, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_SEND, fd, userData);
        entry->Address = (ulong)buffer;
        entry->Length = (uint)length;
        entry->OpFlags = (uint)(flags | MSG_WAITALL | MSG_NOSIGNAL);
    }

    public static void SendMessage(SubmissionEntry* entry, int fd, MessageHeader* message, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_SENDMSG, fd, userData);
        entry->Address = (ulong)message;
        entry->OpFlags = (uint)(flags | MSG_WAITALL | MSG_NOSIGNAL);
    }

    /// <summary>Asks the kernel to cancel the request whose user data is <paramref name="target"/>.</summary>
    public static void Cancel(SubmissionEntry* entry, ulong target, ulong userData)
    {
        entry->Opcode = IORING_OP_ASYNC_CANCEL;
        entry->Fd = -1;
        entry->Address = target;
        entry->UserData = userData;
    }

    /// <summary>Asks the kernel to cancel every request of the ring.</summary>
    public static void CancelAll(SubmissionEntry* entry, ulong userData)
    {
        entry->Opcode = IORING_OP_ASYNC_CANCEL;
        entry->Fd = -1;
        entry->OpFlags = IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY;
        entry->UserData = userData;
    }

    private static void Socket(SubmissionEntry* entry, byte opcode, int fd, ulong userData)
    {
        entry->Opcode = opcode;
        entry->Fd = fd;
        entry->UserData = userData;
    }
}
