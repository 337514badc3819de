using System.Diagnostics;

namespace SockNotify.Cli.Bench;

/// <summary>
/// The C baseline (bench/baselines/epoll_echo.c, embedded in this assembly), compiled with gcc into the output
/// folder when gcc exists.
/// </summary>
internal static class CBaseline
{
    private const string ResourceName = "epoll_echo.c";

    public static string? Build(string directory, out string? why)
    {
        Directory.CreateDirectory(directory);
        string source = Path.Combine(directory, ResourceName);
        string binary = Path.Combine(directory, "epoll_echo");
        using (Stream embedded = typeof(CBaseline).Assembly.GetManifestResourceStream(ResourceName)!)
        using (FileStream file = File.Create(source))
        {
            embedded.CopyTo(file);
        }

        try
        {
            using Process gcc = Process.Start(new ProcessStartInfo("gcc", ["-O2", "-o", binary, source]) { RedirectStandardError = true })!;
            string errors = gcc.StandardError.ReadToEnd();
            gcc.WaitForExit();
            why = gcc.ExitCode == 0 ? null : $"gcc failed: {errors}";
            return gcc.ExitCode == 0 ? binary : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            why = "gcc is not installed";
            return null;
        }
    }
}
