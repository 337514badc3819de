using System.Net;
using System.Text.Json;
using SockNotify.Cli.Bench;
using SockNotify.Cli.Echo;

namespace SockNotify.Cli.Tests;

[Collection(nameof(MeasuresTheMachine))]
public class BenchTests
{
    [Fact]
    public async Task The_load_generator_verifies_echoes_and_measures_round_trips()
    {
        await using IEchoServer server = await EchoEngines.StartAsync(EchoEngines.Notify, new IPEndPoint(IPAddress.Loopback, 0), threads: 1);
        StringWriter progress = new();
        LoadResult result = LoadGenerator.Run(server.LocalEndPoint, connections: 20, size: 100, depth: 3, TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(500), progress);

        Assert.Null(result.Error);
        Assert.True(result.Messages > 0);
        Assert.True(result.P50Microseconds > 0 && result.P50Microseconds <= result.P99Microseconds && result.P99Microseconds <= result.P999Microseconds);
        Assert.Equal([LoadGenerator.MeasuringLine, LoadGenerator.DoneLine], progress.ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public async Task The_load_generator_reports_a_server_that_corrupts_the_echo()
    {
        using System.Net.Sockets.Socket listener = new(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        Task corrupting = Task.Run(async () =>
        {
            using System.Net.Sockets.Socket connection = await listener.AcceptAsync();
            byte[] buffer = new byte[64];
            int count = await connection.ReceiveAsync(buffer);
            buffer[0] ^= 0xff;
            await connection.SendAsync(buffer.AsMemory(0, count));
            await Task.Delay(2000);
        });

        LoadResult result = LoadGenerator.Run((IPEndPoint)listener.LocalEndPoint!, connections: 1, size: 64, depth: 1, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1), TextWriter.Null);
        Assert.Contains("differs", result.Error);
        await corrupting;
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("10s", 10_000)]
    [InlineData("1.5s", 1_500)]
    [InlineData("2m", 120_000)]
    public void Durations_read_with_their_unit(string text, int milliseconds)
    {
        Assert.True(CommandOptions.TryParseDuration(text, out TimeSpan value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("10")]
    [InlineData("s")]
    [InlineData("ten seconds")]
    public void Durations_without_a_unit_or_number_are_refused(string text) => Assert.False(CommandOptions.TryParseDuration(text, out _));

    /// <summary>A whole bench, short: processes, pinning, /proc sampling, table, JSON and charts.</summary>
    [Fact]
    public async Task A_short_bench_compares_engines_and_writes_its_report_and_charts()
    {
        string output = Path.Combine(Path.GetTempPath(), $"socknotify-bench-{Guid.NewGuid():N}");
        try
        {
            (int exitCode, string stdout, string stderr) = await CommandLineTests.RunAsync(
                "bench", "--engines", "notify,completion,c-epoll,c-uring", "--connections", "10", "--warmup", "500ms", "--duration", "1s",
                "--idle-connections", "50", "--repeat", "1", "--out", output);
            Assert.True(exitCode == 0, $"{stdout}\n{stderr}");

            using JsonDocument report = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "bench.json")));
            JsonElement rows = report.RootElement.GetProperty("Rows");
            bool hasGcc = Environment.GetEnvironmentVariable("PATH")!.Split(':').Any(d => File.Exists(Path.Combine(d, "gcc")));
            bool hasLiburing = File.Exists("/usr/include/liburing.h");
            // Without gcc the C baselines are skipped with a note, and without liburing's headers the io_uring one.
            Assert.Equal(2 + (hasGcc ? 1 : 0) + (hasGcc && hasLiburing ? 1 : 0), rows.GetArrayLength());
            if (!hasGcc || !hasLiburing)
            {
                Assert.Contains("c-uring skipped", stdout);
            }
            foreach (JsonElement row in rows.EnumerateArray())
            {
                Assert.True(row.GetProperty("Load").GetProperty("Messages").GetInt64() > 0);
                Assert.True(row.GetProperty("ServerCpuSeconds").GetDouble() >= 0);
            }

            Assert.True(new FileInfo(Path.Combine(output, "throughput.png")).Length > 0);
            Assert.True(new FileInfo(Path.Combine(output, "cpu-per-message.png")).Length > 0);
            Assert.Contains("vs sockets", stdout);
            Assert.Contains("vs c-uring", stdout);
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }
}

/// <summary>Tests that pin processes to CPUs and time them, or load every CPU (soaks), run alone, after the parallel ones.</summary>
[CollectionDefinition(nameof(MeasuresTheMachine), DisableParallelization = true)]
public sealed class MeasuresTheMachine;
