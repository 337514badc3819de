using static SockNotify.Interop.IoUring;
using static SockNotify.Interop.Socket;

namespace SockNotify.Backends.Linux.IoUring;

/// <summary>
/// One preparation per opcode, each filling a zeroed submission entry (liburing's <c>io_uring_prep_*</c>). Sockets are
/// named by their index in the ring's fixed-file table, never by descriptor.
/// </summary>
internal static unsafe class Prep
{
    /// <summary>A multishot accept: one completion per connection (non-blocking, close-on-exec) until it ends.</summary>
    public static void MultishotAccept(SubmissionEntry* entry, int fixedFile, ulong userData)
    {
        Socket(entry, IORING_OP_ACCEPT, fixedFile, userData);
        entry->IoPriority = IORING_ACCEPT_MULTISHOT;
        entry->OpFlags = SOCK_NONBLOCK | SOCK_CLOEXEC;
    }

    public static void Connect(SubmissionEntry* entry, int fixedFile, byte* address, int addressLength, ulong userData)
    {
        Socket(entry, IORING_OP_CONNECT, fixedFile, userData);
        entry->Address = (ulong)address;
        entry->Offset = (ulong)addressLength;
    }

    public static void Receive(SubmissionEntry* entry, int fixedFile, byte* buffer, int length, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_RECV, fixedFile, userData);
        entry->Address = (ulong)buffer;
        entry->Length = (uint)length;
        entry->OpFlags = (uint)flags;
    }

    /// <summary>A receive into a buffer the kernel picks from <paramref name="bufferGroup"/> when data arrives.</summary>
    public static void ReceiveSelectBuffer(SubmissionEntry* entry, int fixedFile, ushort bufferGroup, int length, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_RECV, fixedFile, userData);
        entry->Flags |= IOSQE_BUFFER_SELECT;
        entry->BufferGroup = bufferGroup;
        entry->Length = (uint)length;
        entry->OpFlags = (uint)flags;
    }

    public static void ReceiveMessage(SubmissionEntry* entry, int fixedFile, MessageHeader* message, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_RECVMSG, fixedFile, userData);
        entry->Address = (ulong)message;
        entry->OpFlags = (uint)flags;
    }

    // MSG_WAITALL makes the kernel finish a partial stream send itself, as Winsock's send completes.
    public static void Send(SubmissionEntry* entry, int fixedFile, byte* buffer, int length, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_SEND, fixedFile, userData);
        entry->Address = (ulong)buffer;
        entry->Length = (uint)length;
        entry->OpFlags = (uint)(flags | MSG_WAITALL | MSG_NOSIGNAL);
    }

    public static void SendMessage(SubmissionEntry* entry, int fixedFile, MessageHeader* message, int flags, ulong userData)
    {
        Socket(entry, IORING_OP_SENDMSG, fixedFile, userData);
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

    private static void Socket(SubmissionEntry* entry, byte opcode, int fixedFile, ulong userData)
    {
        entry->Opcode = opcode;
        entry->Fd = fixedFile;
        entry->Flags = IOSQE_FIXED_FILE;
        entry->UserData = userData;
    }
}
