using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SockNotify.Cli.Tests;

/// <summary><c>socknotify http</c> as users run it.</summary>
public partial class CommandLineTests
{
    [Theory]
    [InlineData("sockets", SigTerm)]
    [InlineData("socknotify", SigTerm)]
    [InlineData("socknotify", SigInt)]
    public async Task Http_says_where_it_listens_serves_TechEmpower_endpoints_and_exits_0_on_a_signal(string transport, int signal)
    {
        using Process process = Start("http", "--transport", transport, "--port", "0");
        string? line = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(line);
        Assert.StartsWith("listening on 127.0.0.1:", line);
        int port = int.Parse(line["listening on 127.0.0.1:".Length..], System.Globalization.CultureInfo.InvariantCulture);

        using (HttpClient client = new() { Timeout = TimeSpan.FromSeconds(30) })
        {
            using HttpResponseMessage plaintext = await client.GetAsync($"http://127.0.0.1:{port}/plaintext");
            Assert.Equal("text/plain", plaintext.Content.Headers.ContentType?.MediaType);
            Assert.Equal("Hello, World!", await plaintext.Content.ReadAsStringAsync());
            using HttpResponseMessage json = await client.GetAsync($"http://127.0.0.1:{port}/json");
            Assert.Equal("application/json", json.Content.Headers.ContentType?.MediaType);
            Assert.Equal("""{"message":"Hello, World!"}""", await json.Content.ReadAsStringAsync());
        }

        Assert.Equal(0, Kill(process.Id, signal));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, process.ExitCode);
        Assert.Contains($"stopped ({transport})", await process.StandardOutput.ReadToEndAsync());
    }

    [Theory]
    [InlineData("sockets")]
    [InlineData("socknotify")]
    public async Task Http_names_a_port_in_use_and_exits_1(string transport)
    {
        using Socket occupant = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        occupant.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        occupant.Listen();
        int port = ((IPEndPoint)occupant.LocalEndPoint!).Port;

        (int exitCode, _, string error) = await RunAsync("http", "--transport", transport, "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));

        Assert.Equal(1, exitCode);
        Assert.Contains($"port {port}", error);
    }
}
