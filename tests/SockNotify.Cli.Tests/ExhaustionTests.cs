using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace SockNotify.Cli.Tests;

/// <summary>
/// libuv's <c>test-emfile</c> for every echo engine: a server run with a small open-files limit is offered more
/// connections than it can hold. It must keep serving the ones it has, wait for descriptors without spinning a core,
/// and serve the waiting connections once descriptors free up.
/// </summary>
[Collection(nameof(MeasuresTheMachine))] // Measures the server's CPU: alone.
public sealed class ExhaustionTests(ITestOutputHelper output)
{
    private const int DescriptorLimit = 200;
    private const int Clients = 260;

    // Not the sockets and kestrel engines: there the .NET runtime itself aborts ("Out of memory.") once descriptors run
    // out, with W^X on or off; measured with this test, then left to the runtime.
    [Theory]
    [InlineData("notify")]
    [InlineData("completion")]
    public async Task At_the_open_files_limit_an_engine_serves_what_it_holds_backs_off_and_recovers(string engine)
    {
        using Process server = StartLimited(engine);
        List<Socket> clients = [];
        try
        {
            string? line = await server.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.StartsWith("listening on 127.0.0.1:", line);
            IPEndPoint endPoint = new(IPAddress.Loopback, int.Parse(line!["listening on 127.0.0.1:".Length..], CultureInfo.InvariantCulture));
            for (int i = 0; i < Clients; i++)
            {
                Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(endPoint); // The kernel completes the handshake for the backlog.
            }

            bool[] served = await Task.WhenAll(clients.Select(client => EchoesAsync(client, TimeSpan.FromSeconds(3))));
            int servedCount = served.Count(s => s);
            Assert.InRange(servedCount, 1, Clients - 1); // Some served, the rest waiting: the limit was reached.

            double cores = await CpuWhileIdleAsync(server, TimeSpan.FromSeconds(2));
            output.WriteLine($"{engine}: {servedCount} of {Clients} served at {DescriptorLimit} descriptors; {cores:F3} cores while the rest waited");
            Assert.True(cores < 0.3, $"The server used {cores:F2} cores while out of descriptors: it spins.");

            List<Socket> held = [.. clients.Where((_, i) => served[i])];
            Assert.All(await Task.WhenAll(held.Select(client => EchoesAsync(client, TimeSpan.FromSeconds(3)))), Assert.True);

            held.ForEach(client => client.Dispose()); // Descriptors free up in the server as it sees these close.
            List<Socket> waiting = [.. clients.Where((_, i) => !served[i])];
            bool[] recovered = await Task.WhenAll(waiting.Select(client => EchoesAsync(client, TimeSpan.FromSeconds(15))));
            Assert.True(recovered.All(r => r), $"{recovered.Count(r => !r)} of {waiting.Count} waiting connections were never served.");
        }
        finally
        {
            clients.ForEach(client => client.Dispose());
            server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    /// <summary>Sends one byte and waits for it to come back.</summary>
    private static async Task<bool> EchoesAsync(Socket client, TimeSpan timeout)
    {
        using CancellationTokenSource deadline = new(timeout);
        try
        {
            await client.SendAsync(new byte[] { 7 }, deadline.Token);
            byte[] reply = new byte[1];
            return await client.ReceiveAsync(reply, deadline.Token) == 1 && reply[0] == 7;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The cores the process used over <paramref name="period"/> (user and system time, from /proc).</summary>
    private static async Task<double> CpuWhileIdleAsync(Process process, TimeSpan period)
    {
        double before = CpuSeconds(process.Id);
        await Task.Delay(period);
        return (CpuSeconds(process.Id) - before) / period.TotalSeconds;
    }

    private static double CpuSeconds(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        string[] fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the command name.
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
    }

    private static Process StartLimited(string engine)
    {
        string cli = Path.Combine(AppContext.BaseDirectory, "SockNotify.Cli.dll");
        ProcessStartInfo start = new("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add($"ulimit -n {DescriptorLimit} && exec dotnet \"$0\" echo --engine {engine} --port 0");
        start.ArgumentList.Add(cli);
        return Process.Start(start)!;
    }
}
