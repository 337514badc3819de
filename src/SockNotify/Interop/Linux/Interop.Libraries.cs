namespace SockNotify;

internal static partial class Interop
{
    internal static partial class Libraries
    {
        // The runtime resolves "libc" to the C library of the running system (libc.so.6 on glibc).
        internal const string Libc = "libc";
    }
}
