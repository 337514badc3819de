using System.Runtime.InteropServices;

namespace SockNotify.Tests.Support;

/// <summary>The few libc calls tests need to build situations .NET sockets cannot produce on their own.</summary>
internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "dup", SetLastError = true)]
    public static partial int Dup(nint fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary>fcntl(F_DUPFD): a copy of <paramref name="fd"/> at the lowest free number from <paramref name="lowest"/> up.</summary>
    public static int DupAtOrAbove(nint fd, int lowest) => Fcntl(fd, 0, lowest);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(nint fd, int command, int argument);
}
