using System.Diagnostics;

namespace SockNotify.Cli.Bench;

/// <summary>
/// A C baseline of the bench: an echo server in <c>bench/baselines/</c> (embedded in this assembly), compiled with gcc
/// into the output folder during the run, and skipped with a note saying what to install when it cannot be.
/// </summary>
internal sealed record CBaseline(string Engine, string SourceName, string[] Libraries, string MissingHint)
{
    /// <summary><c>epoll_echo.c</c>: level-triggered epoll, one thread.</summary>
    public static readonly CBaseline Epoll = new("c-epoll", "epoll_echo.c", [], "");

    /// <summary><c>uring_echo.c</c>: io_uring with a multishot accept and a receive then a send per connection (liburing).</summary>
    public static readonly CBaseline Uring = new("c-uring", "uring_echo.c", ["-luring"],
        " (it needs liburing's headers: apt-get install -y liburing-dev)");

    public static readonly CBaseline[] All = [Epoll, Uring];

    public static CBaseline? Named(string engine) => Array.Find(All, baseline => baseline.Engine == engine);

    /// <summary>Compiles the server into <paramref name="directory"/>: its path, or null and why not.</summary>
    public string? Build(string directory, out string? why)
    {
        Directory.CreateDirectory(directory);
        string source = Path.Combine(directory, SourceName);
        string binary = Path.Combine(directory, Path.GetFileNameWithoutExtension(SourceName));
        using (Stream embedded = typeof(CBaseline).Assembly.GetManifestResourceStream(SourceName)!)
        using (FileStream file = File.Create(source))
        {
            embedded.CopyTo(file);
        }

        try
        {
            using Process gcc = Process.Start(new ProcessStartInfo("gcc", ["-O2", "-o", binary, source, .. Libraries]) { RedirectStandardError = true })!;
            string errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            why = gcc.ExitCode == 0 ? null : $"gcc failed{MissingHint}: {errors.Trim()}";
            return gcc.ExitCode == 0 ? binary : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            why = "gcc is not installed (apt-get install -y gcc)";
            return null;
        }
    }
}
