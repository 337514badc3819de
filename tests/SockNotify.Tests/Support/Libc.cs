using System.Runtime.InteropServices;

namespace SockNotify.Tests.Support;

/// <summary>The few libc calls tests need to build situations .NET sockets cannot produce on their own.</summary>
internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    public static partial int Dup(nint fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
