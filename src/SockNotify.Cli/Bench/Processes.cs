using System.Diagnostics;
using System.Globalization;

namespace SockNotify.Cli.Bench;

/// <summary>Child processes of the bench: started pinned to a CPU with taskset, stopped with SIGTERM.</summary>
internal static class Processes
{
    /// <summary>Whether children can be pinned: taskset exists and there are two CPUs for server and load.</summary>
    public static bool CanPin { get; } = Environment.ProcessorCount >= 2 && (File.Exists("/usr/bin/taskset") || File.Exists("/bin/taskset"));

    /// <summary>The command line that runs this tool again (dotnet SockNotify.Cli.dll ...), for child processes.</summary>
    public static IReadOnlyList<string> Self(params string[] arguments)
    {
        string host = Environment.ProcessPath!;
        return Path.GetFileName(host) == "dotnet"
            ? [host, typeof(Processes).Assembly.Location, .. arguments]
            : [host, .. arguments];
    }

    public static Process Start(IReadOnlyList<string> command, int? cpu)
    {
        ProcessStartInfo start = new(cpu is not null && CanPin ? "taskset" : command[0])
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (cpu is not null && CanPin)
        {
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(cpu.Value.ToString(System.Globalization.CultureInfo.InvariantCulture));
            start.ArgumentList.Add(command[0]);
        }

        foreach (string argument in command.Skip(1))
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start) ?? throw new InvalidOperationException($"could not start {command[0]}");
    }

    /// <summary>Sends SIGTERM (Process.Kill only sends SIGKILL, which allows no clean shutdown).</summary>
    public static void Terminate(int pid) => Output("kill", "-TERM", pid.ToString(CultureInfo.InvariantCulture));

    /// <summary>The clock ticks per second in which /proc reports CPU times.</summary>
    public static double ClockTicksPerSecond() =>
        double.TryParse(Output("getconf", "CLK_TCK"), NumberStyles.Float, CultureInfo.InvariantCulture, out double ticks) && ticks > 0 ? ticks : 100;

    private static string Output(string program, params string[] arguments)
    {
        ProcessStartInfo start = new(program) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        string output = process.StandardOutput.ReadToEnd().Trim();
        process.WaitForExit();
        return output;
    }
}
