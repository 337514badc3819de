using System.Diagnostics;
using System.Net;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>How connections end, from either side, and what the other side sees.</summary>
public sealed class ConnectionEndTests
{
    /// <summary>How soon the other side must see an end: "at once", with room for a loaded machine.</summary>
    private static readonly TimeSpan AtOnce = TimeSpan.FromSeconds(2);

    private const string PartialUpload = "POST /body-end HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\n0123456789";

    [Theory]
    [AllTransports]
    public async Task A_client_FIN_in_the_middle_of_a_body_ends_the_body_read_with_an_error(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        using RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);

        await connection.SendAsync(PartialUpload);
        connection.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);

        Exception? seen = await server.BodyEnd.Task.WaitAsync(TestServer.Patience);
        Assert.NotNull(seen); // "Unexpected end of request content", not a short body taken as whole.
        await connection.ReadToEndAsync(TestServer.Patience); // After Kestrel's 400, FIN or RST: the end, in time.
    }

    [Theory]
    [AllTransports]
    public async Task A_client_RST_in_the_middle_of_a_body_ends_the_body_read_with_an_error(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);

        await connection.SendAsync(PartialUpload);
        await server.BodyStarted.Task.WaitAsync(TestServer.Patience); // A RST that overtook the request would discard it.
        connection.Reset();

        Assert.NotNull(await server.BodyEnd.Task.WaitAsync(TestServer.Patience));
        await AssertStillServes(server);
    }

    [Theory]
    [AllTransports]
    public async Task A_client_RST_fires_RequestAborted(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);

        await connection.SendAsync("POST /wait-abort HTTP/1.1\r\nHost: test\r\nContent-Length: 0\r\n\r\n");
        await server.WaitingForAbort.Task.WaitAsync(TestServer.Patience); // The reset comes in the middle of the request.
        connection.Reset();

        await server.RequestAborted.Task.WaitAsync(TestServer.Patience);
    }

    [Theory]
    [AllTransports]
    public async Task A_client_FIN_between_requests_ends_the_connection(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        using RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);

        await connection.SendAsync("GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
        Assert.Equal(200, (await connection.ReadResponseAsync()).Status);
        connection.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Send);

        Assert.Equal(ConnectionEnd.Fin, await connection.ReadToEndAsync(AtOnce));
    }

    [Theory]
    [AllTransports]
    public async Task A_client_RST_before_any_request_leaves_the_server_serving(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        for (int i = 0; i < 10; i++)
        {
            (await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port)).Reset();
        }

        await AssertStillServes(server);
    }

    [Theory]
    [AllTransports]
    public async Task A_server_abort_reaches_the_client_at_once_as_RST(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        using RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);

        await connection.SendAsync("GET /abort HTTP/1.1\r\nHost: test\r\n\r\n");

        Assert.Equal(ConnectionEnd.Reset, await connection.ReadToEndAsync(AtOnce));
    }

    [Theory]
    [AllTransports]
    public async Task Graceful_shutdown_ends_an_idle_keep_alive_connection_with_FIN(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        using RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);
        await connection.SendAsync("GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
        Assert.Equal(200, (await connection.ReadResponseAsync()).Status);

        Stopwatch stopping = Stopwatch.StartNew();
        Task stopped = server.StopAsync();

        Assert.Equal(ConnectionEnd.Fin, await connection.ReadToEndAsync(TestServer.Patience));
        await stopped.WaitAsync(TestServer.Patience);
        Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(5), $"Stopping took {stopping.Elapsed}: the idle connection was waited for.");
    }

    [Theory]
    [AllTransports]
    public async Task Graceful_shutdown_finishes_a_request_in_flight_then_ends_its_connection(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        using RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);
        await connection.SendAsync("GET /delay/500 HTTP/1.1\r\nHost: test\r\n\r\n");
        await Task.Delay(100); // The request is in the endpoint's delay.

        Task stopped = server.StopAsync();

        (int status, byte[] body) = await connection.ReadResponseAsync();
        Assert.Equal(200, status);
        Assert.Equal("late"u8.ToArray(), body);
        Assert.Equal(ConnectionEnd.Fin, await connection.ReadToEndAsync(TestServer.Patience));
        await stopped.WaitAsync(TestServer.Patience);
    }

    private static async Task AssertStillServes(TestServer server)
    {
        using HttpClient client = new() { Timeout = TestServer.Patience };
        Assert.Equal("Hello", await client.GetStringAsync($"http://127.0.0.1:{server.Port}/hello"));
    }
}
