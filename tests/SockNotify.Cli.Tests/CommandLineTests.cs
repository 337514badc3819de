using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace SockNotify.Cli.Tests;

/// <summary>The socknotify process as users run it: exit codes, messages, signals.</summary>
public partial class CommandLineTests
{
    [Theory]
    [InlineData("echo", "--engine", "bogus")]
    [InlineData("echo", "--port", "70000")]
    [InlineData("echo", "--threads", "0")]
    [InlineData("echo", "--address", "not-an-address")]
    [InlineData("echo", "--threads", "100000000")]
    [InlineData("demo", "no-such-scenario")]
    [InlineData("load", "--server", "127.0.0.1:1", "--duration", "NaNs")]
    [InlineData("load", "--server", "127.0.0.1:1", "--duration", "1e300s")]
    [InlineData("load", "--server", "127.0.0.1:1", "--size", "1048576", "--depth", "32")]
    [InlineData("load", "--server", "nowhere")]
    [InlineData("bench", "--connections", ",")]
    [InlineData("bench", "--connections", "100,,1000")]
    [InlineData("bench", "--engines", ",")]
    [InlineData("bench", "--engines", "notify,bogus")]
    [InlineData("soak", "--engine", "sockets", "--backend", "epoll")]
    [InlineData("soak", "--backend", "kqueue")]
    [InlineData("soak", "--connections", "0")]
    [InlineData("soak", "--duration", "0s")]
    [InlineData("http", "--transport", "bogus")]
    [InlineData("http", "--transport", "sockets", "--backend", "epoll")]
    [InlineData("http", "--port", "-1")]
    [InlineData("no-such-command")]
    public async Task Bad_arguments_print_a_message_and_exit_2(params string[] arguments)
    {
        (int exitCode, string output, string error) = await RunAsync(arguments);
        Assert.Equal(2, exitCode);
        Assert.Contains("socknotify:", error);
        Assert.DoesNotContain("listening", output);
    }

    [Theory]
    [InlineData("notify")]
    [InlineData("sockets")]
    [InlineData("kestrel")]
    [InlineData("kestrel-socknotify")]
    public async Task A_port_in_use_is_named_and_exits_1(string engine)
    {
        using Socket occupant = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        occupant.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        occupant.Listen();
        int port = ((IPEndPoint)occupant.LocalEndPoint!).Port;

        (int exitCode, _, string error) = await RunAsync("echo", "--engine", engine, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1, exitCode);
        Assert.Contains($"port {port}", error);
    }

    [Theory]
    [InlineData("notify")]
    [InlineData("sockets")]
    [InlineData("kestrel")]
    [InlineData("kestrel-socknotify")]
    public async Task Echo_says_where_it_listens_serves_and_shuts_down_cleanly_on_SIGTERM(string engine)
    {
        using Process process = Start("echo", "--engine", engine, "--port", "0");
        string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(line);
        Assert.StartsWith("listening on 127.0.0.1:", line);
        int port = int.Parse(line["listening on 127.0.0.1:".Length..], System.Globalization.CultureInfo.InvariantCulture);

        using (Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await client.ConnectAsync(IPAddress.Loopback, port);
            await client.SendAsync("ping"u8.ToArray());
            byte[] reply = new byte[4];
            Assert.Equal(4, await client.ReceiveAsync(reply));
            Assert.Equal("ping"u8.ToArray(), reply);
        }

        Assert.Equal(0, Kill(process.Id, SigTerm));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        string rest = await process.StandardOutput.ReadToEndAsync();
        Assert.Equal(0, process.ExitCode);
        Assert.Contains($"stopped ({engine})", rest);
        if (engine == "notify")
        {
            Assert.Contains("(0 connections open)", rest); // The client's connection ended before the signal.
        }
    }

    [Fact]
    public async Task Demo_runs_a_scenario_and_exits_0_when_it_verifies()
    {
        (int exitCode, string output, _) = await RunAsync("demo", "poll");
        Assert.Equal(0, exitCode);
        Assert.Contains("verified", output);
    }

    private const int SigTerm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    private static Process Start(params string[] arguments) => Start(null, arguments);

    /// <summary>Starts the tool with <paramref name="environment"/> set in its environment (null values unset).</summary>
    private static Process Start(IReadOnlyDictionary<string, string?>? environment, params string[] arguments)
    {
        ProcessStartInfo start = new("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach ((string name, string? value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[name] = value;
        }

        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "SockNotify.Cli.dll"));
        foreach (string argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        return Process.Start(start)!;
    }

    internal static Task<(int ExitCode, string Output, string Error)> RunAsync(params string[] arguments) => RunAsync(null, arguments);

    internal static async Task<(int ExitCode, string Output, string Error)> RunAsync(IReadOnlyDictionary<string, string?>? environment, params string[] arguments)
    {
        using Process process = Start(environment, arguments);
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return (process.ExitCode, await output, await error);
    }
}
