namespace SockNotify;

internal static partial class Interop
{
    /// <summary>
    /// Fault injection for tests, in one place: a system call wrapper asks <see cref="TryInject"/> first, and an injector
    /// installed for that descriptor may answer for the kernel with an errno (as if the call had failed with it). With
    /// no injector installed it costs one static read per call. Only io_uring_enter asks so far.
    /// </summary>
    internal static class Faults
    {
        private static Injector? s_injector;

        /// <summary>The system calls that can be made to fail.</summary>
        internal enum Call
        {
            IoUringEnter,
        }

        /// <summary>
        /// Makes calls on <paramref name="fd"/> ask <paramref name="decide"/>, which returns the errno to fail with, or 0
        /// to let the call through, until the returned scope is disposed. One injector at a time, for one descriptor,
        /// so tests of other ports running meanwhile are untouched.
        /// </summary>
        internal static IDisposable Install(int fd, Func<Call, Errno> decide)
        {
            Injector injector = new(fd, decide);
            if (Interlocked.CompareExchange(ref s_injector, injector, null) is not null)
            {
                throw new InvalidOperationException("A fault injector is installed already.");
            }

            return injector;
        }

        /// <summary>Whether a call on <paramref name="fd"/> must fail, and with what (errno is then set for the caller too).</summary>
        internal static bool TryInject(Call call, int fd, out Errno errno)
        {
            errno = 0;
            if (Volatile.Read(ref s_injector) is not { } injector || injector.Fd != fd)
            {
                return false;
            }

            errno = injector.Decide(call);
            if (errno == 0)
            {
                return false;
            }

            System.Runtime.InteropServices.Marshal.SetLastPInvokeError((int)errno);
            return true;
        }

        private sealed class Injector(int fd, Func<Call, Errno> decide) : IDisposable
        {
            public int Fd { get; } = fd;

            public Func<Call, Errno> Decide { get; } = decide;

            public void Dispose() => Interlocked.CompareExchange(ref s_injector, null, this);
        }
    }
}
