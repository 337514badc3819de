namespace SockNotify;

internal static partial class Interop
{
    internal static partial class Libraries
    {
        // Resolved by the Windows loader from System32; never loaded on Linux, where no call into them is made.
        internal const string Kernel32 = "kernel32.dll";
        internal const string Ws2_32 = "ws2_32.dll";
        internal const string Ntdll = "ntdll.dll";
    }
}
