using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>What a server holds while idle and what it leaves behind once stopped.</summary>
public sealed class ResourceTests
{
    [Theory]
    [AllTransports]
    public async Task No_descriptor_is_left_after_stop(Transport transport)
    {
        await ServeAndStopAsync(transport); // The runtime's own descriptors (its socket engine, thread pool) open once, here.
        Descriptors before = Descriptors.Snapshot();

        await ServeAndStopAsync(transport);

        Assert.Empty(before.OpenedSince());
    }

    [Theory]
    [SockNotifyTransports]
    public async Task Idle_connections_hold_no_pooled_buffer_and_stop_returns_every_pipe_block(Transport transport)
    {
        CountingMemoryPoolFactory pools = new();
        await using (TestServer server = await TestServer.StartAsync(transport,
            services: services => services.AddSingleton<IMemoryPoolFactory<byte>>(pools)))
        {
            using HttpClient client = new() { Timeout = TestServer.Patience };
            await client.PostAsync($"http://127.0.0.1:{server.Port}/upload", new ByteArrayContent(TestServer.Payload(1024 * 1024)));
            await client.GetByteArrayAsync($"http://127.0.0.1:{server.Port}/download/{1024 * 1024}");
            using RawHttpConnection idle = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);
            await idle.SendAsync("GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
            await idle.ReadResponseAsync();

            Assert.True(pools.Rented > 0, "The transport did not draw its pipe memory from Kestrel's IMemoryPoolFactory.");
            Assert.Equal(0, SockNotifyFigures.Read("socknotify.pool.buffer.lent"));
            Assert.Equal(2, SockNotifyFigures.Read("socknotify.port.active")); // IOQueueCount = 2.

            await server.StopAsync();
        }

        Assert.Equal(0, pools.Outstanding);
        Assert.Equal(0, SockNotifyFigures.Read("socknotify.port.active"));
        Assert.Equal(0, SockNotifyFigures.Read("socknotify.operation.active"));
    }

    /// <summary>A server's whole life: requests on fresh and kept-alive connections, one left idle at the stop.</summary>
    private static async Task ServeAndStopAsync(Transport transport)
    {
        RawHttpConnection idle;
        await using (TestServer server = await TestServer.StartAsync(transport))
        {
            using (HttpClient client = new() { Timeout = TestServer.Patience })
            {
                for (int i = 0; i < 3; i++)
                {
                    Assert.Equal("Hello", await client.GetStringAsync($"http://127.0.0.1:{server.Port}/hello"));
                }
            }

            idle = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);
            await idle.SendAsync("GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
            await idle.ReadResponseAsync();
            await server.StopAsync();
        }

        await idle.ReadToEndAsync(TestServer.Patience);
        idle.Dispose();
    }
}
