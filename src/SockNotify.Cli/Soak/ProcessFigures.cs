using System.Globalization;

namespace SockNotify.Cli.Soak;

/// <summary>What the kernel says about this process, from /proc/self: open descriptors, resident memory, the open-files limit.</summary>
internal static class ProcessFigures
{
    /// <summary>Open file descriptors, not counting the one this count opens to list them.</summary>
    public static int OpenDescriptors() => Directory.EnumerateFileSystemEntries("/proc/self/fd").Count() - 1;

    /// <summary>
    /// Open sockets and kernel objects (epoll, eventfd, io_uring, timerfd: anonymous inodes): what a leak of a socket
    /// library adds to. Unlike the whole count, it leaves out the files the runtime keeps open once it has loaded them
    /// (assemblies, symbols for a first exception's stack trace). Reads every descriptor's link, so it costs more.
    /// </summary>
    public static int OpenKernelObjects() => Directory.EnumerateFileSystemEntries("/proc/self/fd").Count(path =>
        LinkTarget(path) is { } target && (target.StartsWith("socket:", StringComparison.Ordinal) || target.StartsWith("anon_inode:", StringComparison.Ordinal)));

    private static string? LinkTarget(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null; // Closed since it was listed.
        }
    }

    /// <summary>Resident memory in bytes (the second field of /proc/self/statm, in pages).</summary>
    public static long ResidentBytes() =>
        long.Parse(File.ReadAllText("/proc/self/statm").Split(' ')[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize;

    /// <summary>The soft limit on open files (RLIMIT_NOFILE), or null when it is unlimited or cannot be read.</summary>
    public static long? OpenFilesLimit()
    {
        // "Max open files            20000                20000                files"
        string? line = File.ReadLines("/proc/self/limits").FirstOrDefault(l => l.StartsWith("Max open files", StringComparison.Ordinal));
        string[] fields = line?["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries) ?? [];
        return fields.Length > 0 && long.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out long soft) ? soft : null;
    }
}
