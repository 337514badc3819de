using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Threading.Channels;

namespace SockNotify.Cli.Bench;

/// <summary>
/// An echo server under measurement, in its own process: started pinned to a CPU, read for its "listening on" line,
/// sampled through /proc for CPU time and resident memory, asked for its allocation counter over standard input
/// (the .NET engines' hidden <c>--stats</c> option), and stopped with SIGTERM.
/// </summary>
internal sealed class ServerProcess : IDisposable
{
    private static readonly double s_clockTicksPerSecond = Processes.ClockTicksPerSecond();

    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    /// <summary>Whether the server answers stats requests on standard input (the .NET engines do; C does not).</summary>
    private readonly bool _reportsAllocations;

    private ServerProcess(Process process, bool reportsAllocations)
    {
        _process = process;
        _reportsAllocations = reportsAllocations;
        _ = PumpAsync();
        _ = process.StandardError.ReadToEndAsync(); // Drained so that a chatty server never blocks on a full pipe.
    }

    public IPEndPoint EndPoint { get; private set; } = null!;

    public int Id => _process.Id;

    /// <summary>Starts <paramref name="command"/> pinned to <paramref name="cpu"/> and waits for its "listening on" line.</summary>
    public static async Task<ServerProcess> StartAsync(IReadOnlyList<string> command, int? cpu, bool reportsAllocations)
    {
        ServerProcess server = new(Processes.Start(command, cpu), reportsAllocations);
        string? line = await server.ReadLineAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        const string Prefix = "listening on ";
        if (line is null || !line.StartsWith(Prefix, StringComparison.Ordinal))
        {
            server.Dispose();
            throw new InvalidOperationException($"the server did not start: {line ?? "no output"}");
        }

        server.EndPoint = IPEndPoint.Parse(line[Prefix.Length..]);
        return server;
    }

    /// <summary>User plus system CPU time of the whole process, from /proc/PID/stat.</summary>
    public double CpuSeconds()
    {
        string stat = File.ReadAllText($"/proc/{Id}/stat");
        // Fields after the command name (which may hold spaces) start after the last ')'; utime and stime are 14 and 15.
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / s_clockTicksPerSecond;
    }

    /// <summary>Resident memory in bytes, from /proc/PID/status.</summary>
    public long ResidentBytes()
    {
        foreach (string line in File.ReadLines($"/proc/{Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("no VmRSS in /proc status");
    }

    /// <summary>Bytes the server has allocated on the managed heap so far, or null for a server that cannot tell (C).</summary>
    public Task<long?> AllocatedBytesAsync() =>
        AskAsync(EchoCommand.StatsRequest, EchoCommand.StatsReplyPrefix, TimeSpan.FromSeconds(10));

    /// <summary>
    /// Has a .NET server collect its garbage, so that resident memory reflects live objects, and returns its live
    /// managed heap in bytes; null for a server that cannot (C).
    /// </summary>
    public Task<long?> CollectGarbageAsync() =>
        AskAsync(EchoCommand.CollectRequest, EchoCommand.CollectReplyPrefix, TimeSpan.FromSeconds(30));

    /// <summary>Writes a request line to a .NET server (echo --stats) and reads the number its reply carries.</summary>
    private async Task<long?> AskAsync(string request, string replyPrefix, TimeSpan timeout)
    {
        if (!_reportsAllocations)
        {
            return null;
        }

        await _process.StandardInput.WriteLineAsync(request).ConfigureAwait(false);
        await _process.StandardInput.FlushAsync().ConfigureAwait(false);
        while (await ReadLineAsync(timeout).ConfigureAwait(false) is { } line)
        {
            if (line.StartsWith(replyPrefix, StringComparison.Ordinal))
            {
                return long.Parse(line[replyPrefix.Length..], CultureInfo.InvariantCulture);
            }
        }

        return null;
    }

    /// <summary>Sends SIGTERM and waits for a clean exit; returns the server's last words.</summary>
    public async Task<string> StopAsync()
    {
        Processes.Terminate(_process.Id);
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        List<string> rest = [];
        while (_lines.Reader.TryRead(out string? line))
        {
            rest.Add(line);
        }

        return $"exit {_process.ExitCode}: {string.Join(" | ", rest)}";
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
        }

        _process.Dispose();
    }

    private async Task<string?> ReadLineAsync(TimeSpan timeout)
    {
        using CancellationTokenSource cancel = new(timeout);
        try
        {
            return await _lines.Reader.ReadAsync(cancel.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            return null;
        }
    }

    private async Task PumpAsync()
    {
        while (await _process.StandardOutput.ReadLineAsync().ConfigureAwait(false) is { } line)
        {
            await _lines.Writer.WriteAsync(line).ConfigureAwait(false);
        }

        _lines.Writer.Complete();
    }
}
