using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace SockNotify.Cli.Bench;

/// <summary>
/// What one wrk run measured, from its Lua <c>done</c> hook: latencies in microseconds as wrk reports them (corrected
/// for coordinated omission, one sample per pipelined batch), null where wrk gave 0 for a run that had responses.
/// </summary>
/// <remarks>
/// wrk 4.1 (Debian's) returned 0 for the p99 of a run whose max latency was 136 ms; its percentile counts up from the
/// histogram's minimum after its coordinated-omission correction may have added samples below it. Its Lua API gives no
/// other way to the histogram (indexing it returns the index), so such a figure is left out rather than shown as 0.
/// </remarks>
internal sealed record WrkResult(
    long Requests,
    double Seconds,
    long Bytes,
    double? P50Microseconds,
    double? P99Microseconds,
    double MaxMicroseconds,
    int ConnectErrors,
    int ReadErrors,
    int WriteErrors,
    int TimeoutErrors,
    int StatusErrors,
    string? Error = null)
{
    public double RequestsPerSecond => Seconds > 0 ? Requests / Seconds : 0;

    /// <summary>Socket errors and responses that were not 2xx or 3xx: a correct run has none.</summary>
    public int Errors => ConnectErrors + ReadErrors + WriteErrors + TimeoutErrors + StatusErrors;

    public static WrkResult Failed(string error) => new(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, error);
}

[JsonSerializable(typeof(WrkResult))]
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
internal sealed partial class WrkResultJson : JsonSerializerContext;

/// <summary>
/// The HTTP load generator of <c>bench http</c>: wrk (a Debian package), run pinned to a CPU with a Lua script that
/// pipelines requests (TechEmpower's pipeline.lua) and prints the figures as one JSON line, so nothing depends on
/// the layout of wrk's human-readable report.
/// </summary>
internal static class Wrk
{
    /// <summary>What to do when wrk is missing, as the bench says for gcc.</summary>
    public const string InstallHint = "wrk is not installed; install it with `apt-get install -y wrk` (Debian, Ubuntu; `dnf install wrk` on Fedora) and run the bench again.";

    /// <summary>The prefix of the script's result line.</summary>
    public const string ResultPrefix = "socknotify-wrk ";

    /// <summary>
    /// Sends <c>depth</c> requests in one write each time a connection is ready for more (wrk counts each response), and
    /// reports the summary as JSON. wrk's latencies are microseconds.
    /// </summary>
    private const string Script = """
        local depth = 1
        local batch
        init = function(args)
          depth = tonumber(args[1]) or 1
          local requests = {}
          for i = 1, depth do
            requests[i] = wrk.format()
          end
          batch = table.concat(requests)
        end
        request = function()
          return batch
        end
        done = function(summary, latency, requests)
          local e = summary.errors
          io.write(string.format(
            'socknotify-wrk {"requests":%d,"seconds":%.6f,"bytes":%d,"p50Microseconds":%d,"p99Microseconds":%d,"maxMicroseconds":%d,' ..
            '"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"timeoutErrors":%d,"statusErrors":%d}\n',
            summary.requests, summary.duration / 1e6, summary.bytes, latency:percentile(50), latency:percentile(99), latency.max,
            e.connect, e.read, e.write, e.timeout, e.status))
        end
        """;

    /// <summary>The wrk executable on <paramref name="path"/> (a PATH-style list; the process's PATH when null), or null.</summary>
    public static string? Find(string? path = null)
    {
        foreach (string directory in (path ?? Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, "wrk");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Writes the Lua script into <paramref name="directory"/> and returns its path.</summary>
    public static string WriteScript(string directory)
    {
        Directory.CreateDirectory(directory);
        string script = Path.Combine(directory, "socknotify-wrk.lua");
        File.WriteAllText(script, Script);
        return script;
    }

    /// <summary>Runs wrk pinned to <paramref name="cpu"/> against <paramref name="url"/> and returns what it measured.</summary>
    public static async Task<WrkResult> RunAsync(
        string wrk, string script, Uri url, int connections, int threads, int depth, TimeSpan duration, int? cpu)
    {
        // wrk's timeout (2 s by default) counts a slow response as an error; a longer one keeps a busy shared machine
        // from failing the run, while a server that stops answering still shows as timeouts.
        int timeoutSeconds = (int)Math.Max(5, Math.Ceiling(duration.TotalSeconds));
        IReadOnlyList<string> command =
        [
            wrk, "--threads", Invariant(threads), "--connections", Invariant(connections),
            "--duration", $"{Invariant((int)Math.Max(1, Math.Round(duration.TotalSeconds)))}s", "--timeout", $"{Invariant(timeoutSeconds)}s",
            "--script", script, url.ToString(), "--", Invariant(depth),
        ];
        using Process process = Processes.Start(command, cpu);
        process.StandardInput.Close();
        Task<string> errors = process.StandardError.ReadToEndAsync();
        string output = await process.StandardOutput.ReadToEndAsync().ConfigureAwait(false);
        await process.WaitForExitAsync().ConfigureAwait(false);
        return Parse(output, process.ExitCode, await errors.ConfigureAwait(false));
    }

    /// <summary>The result line of the script in wrk's output, or a failed result that says what went wrong.</summary>
    public static WrkResult Parse(string output, int exitCode, string errors)
    {
        foreach (string line in output.Split('\n'))
        {
            if (line.StartsWith(ResultPrefix, StringComparison.Ordinal))
            {
                try
                {
                    WrkResult result = JsonSerializer.Deserialize(line[ResultPrefix.Length..], WrkResultJson.Default.WrkResult)
                        ?? WrkResult.Failed("wrk printed an empty result");
                    return result.Requests > 0
                        ? result with { P50Microseconds = result.P50Microseconds is > 0 ? result.P50Microseconds : null, P99Microseconds = result.P99Microseconds is > 0 ? result.P99Microseconds : null }
                        : result;
                }
                catch (JsonException e)
                {
                    return WrkResult.Failed($"wrk's result could not be read ({e.Message}): {line}");
                }
            }
        }

        return WrkResult.Failed($"wrk exited {exitCode} without a result: {errors.Trim()} {output.Trim()}".Trim());
    }

    /// <summary>
    /// Non-idle and total ticks of one CPU from /proc/stat (user, nice, system, irq, softirq, steal against those plus
    /// idle and iowait), for how busy the load generator's CPU was.
    /// </summary>
    public static (long Busy, long Total) CpuTicks(int cpu)
    {
        string name = $"cpu{Invariant(cpu)} ";
        foreach (string line in File.ReadLines("/proc/stat"))
        {
            if (line.StartsWith(name, StringComparison.Ordinal))
            {
                long[] fields = [.. line[name.Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Take(8).Select(f => long.Parse(f, CultureInfo.InvariantCulture))];
                long idle = fields[3] + fields[4];
                long total = fields.Sum();
                return (total - idle, total);
            }
        }

        return (0, 0);
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
