using System.Runtime.InteropServices;

namespace SockNotify;

internal static partial class Interop
{
    /// <summary>
    /// Fault injection for tests, in one place. A wrapped call asks <see cref="Ask(Call, int)"/> first, and the injector
    /// installed (one per process at a time) may answer for the kernel: fail the call with an errno, or let it move fewer
    /// bytes or entries than asked (a real short read, write or submit, since the limit is passed to the kernel). A
    /// decide function may also throw, standing for an unexpected exception at that point. With no injector installed
    /// each wrapped call pays one static read.
    /// </summary>
    /// <remarks>
    /// The calls that ask: io_uring_setup (descriptor -1), io_uring_enter (the ring), epoll_wait (the epoll descriptor),
    /// the epoll engine's accept4, recv/recvmsg and send/sendmsg (the socket; short counts for recv and send only),
    /// the wrapping of an accepted descriptor into a <see cref="System.Net.Sockets.Socket"/> (the accepted descriptor),
    /// and the end of each io_uring completion's handling (the ring; only a throwing decide function matters there). Tests that install an injector for every descriptor must
    /// run alone; one for a single descriptor leaves other ports untouched.
    /// </remarks>
    internal static class Faults
    {
        private static Func<Call, int, Fault>? s_decide;

        /// <summary>The points where a fault can be injected.</summary>
        internal enum Call
        {
            IoUringSetup,
            IoUringEnter,
            EpollWait,
            Accept,
            Receive,
            Send,
            WrapAccepted,
            HandleCompletion,
        }

        /// <summary>Makes every call ask <paramref name="decide"/> (given the call and its descriptor) until disposed.</summary>
        internal static IDisposable Install(Func<Call, int, Fault> decide)
        {
            if (Interlocked.CompareExchange(ref s_decide, decide, null) is not null)
            {
                throw new InvalidOperationException("A fault injector is installed already.");
            }

            return new Uninstall(decide);
        }

        /// <summary>Makes only <paramref name="call"/> on <paramref name="fd"/> ask <paramref name="decide"/>.</summary>
        internal static IDisposable Install(Call call, int fd, Func<Fault> decide) =>
            Install((thisCall, thisFd) => thisCall == call && thisFd == fd ? decide() : Fault.None);

        /// <summary>What the injector answers for this call; <see cref="Fault.None"/> without one.</summary>
        internal static Fault Ask(Call call, int fd) => Volatile.Read(ref s_decide) is { } decide ? decide(call, fd) : Fault.None;

        /// <inheritdoc cref="Ask(Call, int)"/>
        internal static Fault Ask(Call call, SafeHandle socket) =>
            Volatile.Read(ref s_decide) is { } decide ? decide(call, (int)socket.DangerousGetHandle()) : Fault.None;

        private sealed class Uninstall(Func<Call, int, Fault> decide) : IDisposable
        {
            public void Dispose() => Interlocked.CompareExchange(ref s_decide, null, decide);
        }
    }

    /// <summary>An injector's answer: the errno a call fails with, or the most it may transfer (0: no limit), or neither.</summary>
    internal readonly record struct Fault(Errno Errno, int Limit)
    {
        public static Fault None => default;

        public bool Fails => Errno != 0;

        public static Fault AtMost(int count) => new(0, count);

        public static implicit operator Fault(Errno errno) => new(errno, 0);

        /// <summary>Fails the call as the kernel would: errno set, -1 returned.</summary>
        public int Fail()
        {
            Marshal.SetLastPInvokeError((int)Errno);
            return -1;
        }

        /// <summary>The count the call may pass to the kernel.</summary>
        public nuint Limited(nuint count) => Limit > 0 && (nuint)Limit < count ? (nuint)Limit : count;
    }
}
