using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>The transport stops reading a connection whose application does not keep up, and resumes when it does.</summary>
public sealed class BackpressureTests
{
    private const int MaxReadBufferSize = 1024 * 1024; // Both transports' default.

    /// <summary>
    /// The kernel's socket buffers: the server's receive buffer and the client's send buffer are fixed at this (so that
    /// autotuning cannot grow them to tcp_rmem's 32 MiB maximum). Not smaller: below a few loopback segments (64 KiB
    /// each) a closed window reopens only on TCP's persist timer, stalling a connection that is still being read.
    /// </summary>
    private const int SocketBuffer = 256 * 1024;

    /// <summary>The kernel's share of the window: both buffers, which the kernel doubles, with room to spare.</summary>
    private const int KernelBuffers = 6 * SocketBuffer;

    [Theory]
    [AllTransports]
    public async Task A_client_stalls_within_the_read_window_then_everything_arrives(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport, listenReceiveBuffer: SocketBuffer);
        byte[] body = TestServer.Payload(8 * 1024 * 1024);
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendBufferSize = SocketBuffer };
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port));
        client.Send(Encoding.ASCII.GetBytes($"POST /stalled-upload HTTP/1.1\r\nHost: test\r\nContent-Length: {body.Length}\r\n\r\n"));

        // The endpoint reads nothing yet: send until nothing more is taken for a second.
        client.Blocking = false;
        int sent = 0;
        DateTime lastProgress = DateTime.UtcNow;
        while (DateTime.UtcNow - lastProgress < TimeSpan.FromSeconds(1) && sent < body.Length)
        {
            int count = client.Send(body, sent, Math.Min(16 * 1024, body.Length - sent), SocketFlags.None, out SocketError error);
            if (error == SocketError.Success && count > 0)
            {
                sent += count;
                lastProgress = DateTime.UtcNow;
            }
            else
            {
                Assert.Equal(SocketError.WouldBlock, error);
                await Task.Delay(10);
            }
        }

        Assert.InRange(sent, MaxReadBufferSize, MaxReadBufferSize + KernelBuffers);

        server.StartReading.SetResult();
        client.Blocking = true;
        client.SendTimeout = (int)TestServer.Patience.TotalMilliseconds;
        client.Send(body, sent, body.Length - sent, SocketFlags.None);
        client.ReceiveTimeout = (int)TestServer.Patience.TotalMilliseconds;
        byte[] response = new byte[4096];
        int received = 0;
        string expected = $"{body.Length} {Convert.ToHexString(SHA256.HashData(body))}";
        while (!Encoding.ASCII.GetString(response, 0, received).Contains(expected, StringComparison.Ordinal))
        {
            int count = client.Receive(response, received, response.Length - received, SocketFlags.None);
            Assert.True(count > 0, $"The connection ended before the body's hash came back: {Encoding.ASCII.GetString(response, 0, received)}");
            received += count;
        }
    }

    [Theory]
    [AllTransports]
    public async Task A_flush_stalls_for_a_client_that_does_not_read_and_an_abort_releases_it(Transport transport)
    {
        const int MaxWriteBufferSize = 64 * 1024; // Both transports' default.
        await using TestServer server = await TestServer.StartAsync(transport, listenSendBuffer: SocketBuffer);
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = SocketBuffer };
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port));
        client.Send("GET /flood HTTP/1.1\r\nHost: test\r\n\r\n"u8);
        Microsoft.AspNetCore.Http.HttpContext flooding = await server.Flooding.Task.WaitAsync(TestServer.Patience);

        // The client reads nothing: the endpoint's writes must stop making progress.
        long flooded = -1;
        DateTime deadline = DateTime.UtcNow + TestServer.Patience;
        while (server.Flooded != flooded && DateTime.UtcNow < deadline)
        {
            flooded = server.Flooded;
            await Task.Delay(1000);
        }

        Assert.InRange(flooded, MaxWriteBufferSize, MaxWriteBufferSize + KernelBuffers);
        Assert.False(server.FloodEnd.Task.IsCompleted);

        flooding.Abort();

        await server.FloodEnd.Task.WaitAsync(TestServer.Patience); // The pending write returned or threw, and the loop ended.
    }

    [Theory]
    [AllTransports]
    public async Task MinResponseDataRate_aborts_a_client_that_does_not_read(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport, listenSendBuffer: SocketBuffer,
            kestrel: options => options.Limits.MinResponseDataRate = new MinDataRate(bytesPerSecond: 1024 * 1024, gracePeriod: TimeSpan.FromSeconds(1.5)));
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = SocketBuffer };
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port));
        client.Send("GET /flood HTTP/1.1\r\nHost: test\r\n\r\n"u8);

        await server.FloodEnd.Task.WaitAsync(TestServer.Patience); // Kestrel's heartbeat saw the rate and aborted.
    }

    [Theory]
    [SockNotifyTransports]
    public async Task Connections_paused_on_a_full_input_do_not_stall_the_others_on_a_two_buffer_pool(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(
            transport, listenReceiveBuffer: SocketBuffer, sockNotify: options => options.PooledBufferCount = 2);
        byte[] stalledBody = TestServer.Payload(MaxReadBufferSize + 2 * KernelBuffers);
        List<Socket> stalled = [];
        List<Task<int>> stalledSends = [];
        try
        {
            for (int i = 0; i < 8; i++)
            {
                Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendBufferSize = SocketBuffer };
                stalled.Add(client);
                await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port));
                client.Send(Encoding.ASCII.GetBytes($"POST /stalled-upload HTTP/1.1\r\nHost: test\r\nContent-Length: {stalledBody.Length}\r\n\r\n"));
                stalledSends.Add(client.SendAsync(stalledBody)); // More than the window: it cannot complete while the endpoint waits.
            }

            await Task.Delay(500);
            Assert.DoesNotContain(stalledSends, send => send.IsCompleted); // Every one of them is paused.

            byte[] body = TestServer.Payload(256 * 1024);
            string expected = $"{body.Length} {Convert.ToHexString(SHA256.HashData(body))}";
            using HttpClient http = new(new SocketsHttpHandler { MaxConnectionsPerServer = 16 }) { Timeout = TestServer.Patience };
            string[] answers = await Task.WhenAll(Enumerable.Range(0, 16).Select(async _ =>
            {
                using HttpResponseMessage response = await http.PostAsync($"http://127.0.0.1:{server.Port}/upload", new ByteArrayContent(body));
                return await response.Content.ReadAsStringAsync();
            }));

            Assert.All(answers, answer => Assert.Equal(expected, answer));
        }
        finally
        {
            server.StartReading.TrySetResult();
            stalled.ForEach(client => client.Dispose());
        }
    }
}
