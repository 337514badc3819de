using System.CommandLine;
using System.Text.Json;
using SockNotify.Cli.Bench;

namespace SockNotify.Cli.Tests;

/// <summary><c>socknotify bench http</c>: its options, its reading of wrk, its medians, and a short real run.</summary>
[Collection(nameof(MeasuresTheMachine))]
public class HttpBenchTests
{
    [Fact]
    public void Defaults_are_both_transports_on_both_tests_at_256_connections_plaintext_pipelined_16_three_rounds()
    {
        HttpBenchPlan plan = Parse();

        Assert.Equal(["sockets", "socknotify"], plan.Transports);
        Assert.Equal(["json", "plaintext"], plan.Tests);
        Assert.Equal((256, 16, 1, 3), (plan.Connections, plan.Pipeline, plan.WrkThreads, plan.Rounds));
        Assert.Equal((TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)), (plan.Warmup, plan.Duration));
        Assert.Equal(CompletionPortBackend.Automatic, plan.Backend);
        Assert.Equal(Path.GetFullPath("results"), plan.OutputDirectory);
    }

    [Fact]
    public void Every_option_reaches_the_plan()
    {
        HttpBenchPlan plan = Parse(
            "--transports", "socknotify,sockets", "--tests", "plaintext", "--connections", "64", "--pipeline", "8",
            "--wrk-threads", "2", "--backend", "epoll", "--warmup", "1s", "--duration", "3s", "--repeat", "5", "--out", "/tmp/x");

        Assert.Equal(["socknotify", "sockets"], plan.Transports); // In the order given: the first round runs them so.
        Assert.Equal(["plaintext"], plan.Tests);
        Assert.Equal((64, 8, 2, 5), (plan.Connections, plan.Pipeline, plan.WrkThreads, plan.Rounds));
        Assert.Equal((TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3)), (plan.Warmup, plan.Duration));
        Assert.Equal((CompletionPortBackend.Epoll, "/tmp/x"), (plan.Backend, plan.OutputDirectory));
    }

    [Theory]
    [InlineData("--transports", "kestrel")]
    [InlineData("--transports", "sockets,")]
    [InlineData("--tests", "fortunes")]
    [InlineData("--connections", "0")]
    [InlineData("--pipeline", "0")]
    [InlineData("--duration", "1500ms")] // wrk runs whole seconds.
    [InlineData("--warmup", "500ms")]
    [InlineData("--backend", "kqueue")]
    public void Bad_options_are_refused(string option, string value)
    {
        Command command = new("http");
        new HttpBenchOptions().AddTo(command);
        Assert.NotEmpty(command.Parse([option, value]).Errors);
    }

    [Theory]
    [InlineData("bench", "http", "--tests", "fortunes")]
    [InlineData("bench", "http", "--duration", "0s")]
    public async Task Bad_arguments_exit_2_without_running_anything(params string[] arguments)
    {
        (int exitCode, _, string error) = await CommandLineTests.RunAsync(arguments);
        Assert.Equal(2, exitCode);
        Assert.Contains("socknotify:", error);
    }

    [Fact]
    public async Task Without_wrk_the_bench_says_how_to_install_it_and_exits_1()
    {
        string emptyPath = Directory.CreateTempSubdirectory("socknotify-no-wrk").FullName;
        try
        {
            (int exitCode, string output, string error) = await CommandLineTests.RunAsync(
                new Dictionary<string, string?> { ["PATH"] = emptyPath }, "bench", "http", "--duration", "1s", "--repeat", "1");

            Assert.Equal(1, exitCode);
            Assert.Contains("apt-get install -y wrk", error);
            Assert.DoesNotContain("listening", output); // Nothing was started.
        }
        finally
        {
            Directory.Delete(emptyPath);
        }
    }

    [Fact]
    public void Wrk_is_looked_up_on_the_path()
    {
        string directory = Directory.CreateTempSubdirectory("socknotify-wrk").FullName;
        try
        {
            Assert.Null(Wrk.Find(directory));
            File.WriteAllText(Path.Combine(directory, "wrk"), "");
            Assert.Equal(Path.Combine(directory, "wrk"), Wrk.Find($"/nonexistent:{directory}"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void The_scripts_result_line_is_read_among_wrks_own_output()
    {
        const string Output = """
            Running 1s test @ http://127.0.0.1:5000/json
              1 threads and 16 connections
            socknotify-wrk {"requests":1000,"seconds":1.000000,"bytes":180000,"p50Microseconds":250,"p99Microseconds":0,"maxMicroseconds":9000,"connectErrors":0,"readErrors":2,"writeErrors":0,"timeoutErrors":1,"statusErrors":3}
            Requests/sec:   1000.00
            """;

        WrkResult result = Wrk.Parse(Output, 0, "");

        Assert.Null(result.Error);
        Assert.Equal((1000L, 1000.0, 250.0), (result.Requests, result.RequestsPerSecond, result.P50Microseconds!.Value));
        Assert.Null(result.P99Microseconds); // wrk said 0 for a run with responses: unknown, not 0.
        Assert.Equal(6, result.Errors);
    }

    [Fact]
    public void A_wrk_run_without_a_result_line_is_a_failure_that_says_why()
    {
        WrkResult result = Wrk.Parse("", 1, "unable to connect to 127.0.0.1:1 Connection refused");
        Assert.Contains("Connection refused", result.Error);
        Assert.Equal(0, result.Requests);
    }

    [Fact]
    public void Medians_are_taken_figure_by_figure_and_errors_add_up()
    {
        HttpBenchRow[] rounds = [Row(100, 3.0, p99: 900, readErrors: 0), Row(300, 1.0, p99: null, readErrors: 2), Row(200, 2.0, p99: 700, readErrors: 1)];

        HttpBenchRow median = HttpBenchRunner.Median(rounds);

        Assert.Equal((200.0, 2.0), (median.RequestsPerSecond, median.ServerCpuMicrosecondsPerRequest));
        Assert.Equal(800.0, median.Load.P99Microseconds); // Of the rounds that know it.
        Assert.Equal(3, median.Load.ReadErrors);
        Assert.False(median.Succeeded);

        static HttpBenchRow Row(double rate, double cpuPerRequest, double? p99, int readErrors) => new(
            "json", "socknotify", 16, 1,
            new WrkResult((long)rate, 1, 0, 100, p99, 1000, 0, readErrors, 0, 0, 0),
            rate, cpuPerRequest * rate / 1e6, cpuPerRequest, 0.5);
    }

    /// <summary>The whole bench, as short as wrk allows: processes, pinning, wrk, /proc sampling, table, JSON, charts.</summary>
    [WrkFact]
    public async Task A_short_run_measures_both_transports_on_both_tests_with_no_error()
    {
        string output = Path.Combine(Path.GetTempPath(), $"socknotify-bench-http-{Guid.NewGuid():N}");
        try
        {
            (int exitCode, string stdout, string stderr) = await CommandLineTests.RunAsync(
                "bench", "http", "--connections", "16", "--warmup", "1s", "--duration", "1s", "--repeat", "1", "--out", output);
            Assert.True(exitCode == 0, $"{stdout}\n{stderr}");

            using JsonDocument report = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output, "bench-http.json")));
            JsonElement rows = report.RootElement.GetProperty("Rows");
            Assert.Equal(
                [("json", "sockets"), ("json", "socknotify"), ("plaintext", "sockets"), ("plaintext", "socknotify")],
                rows.EnumerateArray().Select(r => (r.GetProperty("Test").GetString(), r.GetProperty("Transport").GetString())));
            foreach (JsonElement row in rows.EnumerateArray())
            {
                JsonElement load = row.GetProperty("Load");
                Assert.True(load.GetProperty("Requests").GetInt64() > 0);
                Assert.Equal(0, load.GetProperty("Errors").GetInt32());
                Assert.True(row.GetProperty("ServerCpuMicrosecondsPerRequest").GetDouble() > 0);
            }

            Assert.Equal([1, 1, 16, 16], rows.EnumerateArray().Select(r => r.GetProperty("Pipeline").GetInt32()));
            Assert.True(new FileInfo(Path.Combine(output, "http-requests-per-second.png")).Length > 0);
            Assert.True(new FileInfo(Path.Combine(output, "http-cpu-per-request.png")).Length > 0);
            Assert.Contains("Server CPU µs/req", stdout);
        }
        finally
        {
            if (Directory.Exists(output))
            {
                Directory.Delete(output, recursive: true);
            }
        }
    }

    private static HttpBenchPlan Parse(params string[] arguments)
    {
        Command command = new("http");
        HttpBenchOptions options = new();
        options.AddTo(command);
        ParseResult parsed = command.Parse(arguments);
        Assert.Empty(parsed.Errors);
        return options.Plan(parsed);
    }
}

/// <summary>A test that runs wrk: skipped, saying how to get it, where wrk is not installed.</summary>
public sealed class WrkFactAttribute : FactAttribute
{
    public WrkFactAttribute()
    {
        if (Wrk.Find() is null)
        {
            Skip = "wrk is not installed (apt-get install -y wrk), so bench http cannot run here.";
        }
    }
}
