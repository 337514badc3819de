using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>io_uring(7): the three system calls, the shared ring structures and the constants SockNotify uses.</summary>
    internal static unsafe partial class IoUring
    {
        private const long SYS_io_uring_setup = 425;
        private const long SYS_io_uring_enter = 426;
        private const long SYS_io_uring_register = 427;

        internal const uint IORING_SETUP_CQSIZE = 1u << 3;
        internal const uint IORING_SETUP_SUBMIT_ALL = 1u << 7;
        internal const uint IORING_SETUP_COOP_TASKRUN = 1u << 8;
        internal const uint IORING_SETUP_TASKRUN_FLAG = 1u << 9;

        internal const uint IORING_FEAT_SINGLE_MMAP = 1u << 0;
        internal const uint IORING_FEAT_NODROP = 1u << 1;
        internal const uint IORING_FEAT_EXT_ARG = 1u << 8;

        internal const uint IORING_ENTER_GETEVENTS = 1u << 0;
        internal const uint IORING_ENTER_EXT_ARG = 1u << 3;

        internal const uint IORING_SQ_CQ_OVERFLOW = 1u << 1;
        internal const uint IORING_SQ_TASKRUN = 1u << 2;

        internal const long IORING_OFF_SQ_RING = 0;
        internal const long IORING_OFF_SQES = 0x10000000;

        internal const byte IORING_OP_SENDMSG = 9;
        internal const byte IORING_OP_RECVMSG = 10;
        internal const byte IORING_OP_ACCEPT = 13;
        internal const byte IORING_OP_ASYNC_CANCEL = 14;
        internal const byte IORING_OP_CONNECT = 16;
        internal const byte IORING_OP_SEND = 26;
        internal const byte IORING_OP_RECV = 27;

        internal const byte IOSQE_BUFFER_SELECT = 1 << 5;

        internal const uint IORING_ASYNC_CANCEL_ALL = 1u << 0;
        internal const uint IORING_ASYNC_CANCEL_ANY = 1u << 2;

        internal const ushort IORING_ACCEPT_MULTISHOT = 1 << 0;
        internal const ushort IORING_RECVSEND_POLL_FIRST = 1 << 0;

        internal const uint IORING_CQE_F_BUFFER = 1u << 0;
        internal const uint IORING_CQE_F_MORE = 1u << 1;
        internal const int IORING_CQE_BUFFER_SHIFT = 16;

        internal const uint IORING_REGISTER_EVENTFD = 4;
        internal const uint IORING_REGISTER_PBUF_RING = 22;

        [StructLayout(LayoutKind.Sequential)]
        internal struct SubmissionRingOffsets
        {
            public uint Head, Tail, RingMask, RingEntries, Flags, Dropped, Array, Reserved1;
            public ulong UserAddress;
        }

        [StructLayout(LayoutKind.Sequential)]
        internal struct CompletionRingOffsets
        {
            public uint Head, Tail, RingMask, RingEntries, Overflow, Cqes, Flags, Reserved1;
            public ulong UserAddress;
        }

        /// <summary><c>struct io_uring_params</c> (120 bytes).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct Parameters
        {
            public uint SqEntries;
            public uint CqEntries;
            public uint Flags;
            public uint SqThreadCpu;
            public uint SqThreadIdle;
            public uint Features;
            public uint WqFd;
            public fixed uint Reserved[3];
            public SubmissionRingOffsets SqOffsets;
            public CompletionRingOffsets CqOffsets;
        }

        /// <summary><c>struct io_uring_sqe</c> (64 bytes), with the union members SockNotify writes.</summary>
        [StructLayout(LayoutKind.Explicit, Size = 64)]
        internal struct SubmissionEntry
        {
            [FieldOffset(0)] public byte Opcode;
            [FieldOffset(1)] public byte Flags;
            [FieldOffset(2)] public ushort IoPriority;
            [FieldOffset(4)] public int Fd;
            [FieldOffset(8)] public ulong Offset;
            [FieldOffset(16)] public ulong Address;
            [FieldOffset(24)] public uint Length;
            [FieldOffset(28)] public uint OpFlags;
            [FieldOffset(32)] public ulong UserData;
            [FieldOffset(40)] public ushort BufferGroup;
            [FieldOffset(42)] public ushort Personality;
            [FieldOffset(44)] public int FileIndex;
            [FieldOffset(48)] public ulong Address3;
            [FieldOffset(56)] public ulong Reserved;
        }

        /// <summary><c>struct io_uring_cqe</c> (16 bytes).</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct CompletionQueueEntry
        {
            public ulong UserData;
            public int Result;
            public uint Flags;
        }

        /// <summary><c>struct io_uring_getevents_arg</c>, for IORING_ENTER_EXT_ARG.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct GetEventsArgument
        {
            public ulong SignalMask;
            public uint SignalMaskSize;
            public uint MinWaitMicroseconds;
            public ulong Timespec;
        }

        /// <summary><c>struct __kernel_timespec</c>.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct KernelTimespec
        {
            public long Seconds;
            public long Nanoseconds;
        }

        /// <summary><c>struct io_uring_buf_reg</c> (40 bytes), for IORING_REGISTER_PBUF_RING.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct BufferRingRegistration
        {
            public ulong RingAddress;
            public uint RingEntries;
            public ushort GroupId;
            public ushort Flags;
            public fixed ulong Reserved[3];
        }

        /// <summary>
        /// <c>struct io_uring_buf</c> (16 bytes). The ring's tail lives in the <c>Reserved</c> field of its first entry.
        /// </summary>
        [StructLayout(LayoutKind.Sequential)]
        internal struct ProvidedBuffer
        {
            public ulong Address;
            public uint Length;
            public ushort BufferId;
            public ushort Reserved;
        }

        // glibc has no wrappers for these calls; syscall(2) returns -1 and sets errno like any other call.
        // SAFETY: syscall(2) is variadic, but on x86-64 integer arguments travel as in a fixed call (registers, then
        // the stack), and the kernel truncates each to its declared width.
        [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
        private static partial int Syscall2(long number, uint entries, Parameters* parameters);

        [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
        private static partial int Syscall6(long number, int fd, uint toSubmit, uint minComplete, uint flags, void* argument, nuint argumentSize);

        [LibraryImport(Libraries.Libc, EntryPoint = "syscall", SetLastError = true)]
        private static partial int Syscall4(long number, int fd, uint opcode, void* argument, uint count);

        // SAFETY: parameters points to an io_uring_params zeroed but for its inputs (the kernel rejects nonzero resv).
        internal static int Setup(uint entries, Parameters* parameters) =>
            Faults.Ask(Faults.Call.IoUringSetup, -1) is { Fails: true } fault
                ? fault.Fail()
                : Syscall2(SYS_io_uring_setup, entries, parameters);

        // SAFETY: argument is null (size 0) or, with IORING_ENTER_EXT_ARG, a getevents arg whose timespec outlives the call.
        // A fault may fail the call or let it submit fewer entries than asked (the kernel then takes only those).
        internal static int Enter(int fd, uint toSubmit, uint minComplete, uint flags, void* argument, nuint argumentSize)
        {
            Fault fault = Faults.Ask(Faults.Call.IoUringEnter, fd);
            return fault.Fails
                ? fault.Fail()
                : Syscall6(SYS_io_uring_enter, fd, (uint)fault.Limited(toSubmit), minComplete, flags, argument, argumentSize);
        }

        // SAFETY: argument points to what opcode expects: count entries of its argument type.
        internal static int Register(int fd, uint opcode, void* argument, uint count) =>
            Syscall4(SYS_io_uring_register, fd, opcode, argument, count);
    }

    internal static unsafe partial class Memory
    {
        internal const int PROT_READ = 0x1;
        internal const int PROT_WRITE = 0x2;
        internal const int MAP_SHARED = 0x01;
        internal const int MAP_POPULATE = 0x8000;

        // SAFETY: failure returns MAP_FAILED ((void*)-1), not null, which callers must test for.
        [LibraryImport(Libraries.Libc, EntryPoint = "mmap", SetLastError = true)]
        internal static partial void* Map(void* address, nuint length, int protection, int flags, int fd, long offset);

        // SAFETY: only a mapping from Map, with its length, once nothing (the kernel included) still uses it.
        [LibraryImport(Libraries.Libc, EntryPoint = "munmap", SetLastError = true)]
        internal static partial int Unmap(void* address, nuint length);
    }
}
