using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>The transport stops reading a connection whose application does not keep up, and resumes when it does.</summary>
public sealed class BackpressureTests
{
    private const int MaxReadBufferSize = 1024 * 1024; // Both transports' default.

    /// <summary>
    /// The kernel's share of the window: the server's receive buffer (fixed at 64 KiB, which the kernel doubles, so that
    /// its autotuning cannot grow it to tcp_rmem's maximum) and the client's send buffer (likewise), with room to spare.
    /// </summary>
    private const int KernelBuffers = 1024 * 1024;

    [Theory]
    [AllTransports]
    public async Task A_client_stalls_within_the_read_window_then_everything_arrives(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport, listenReceiveBuffer: 64 * 1024);
        byte[] body = TestServer.Payload(8 * 1024 * 1024);
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendBufferSize = 64 * 1024 };
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, server.Port));
        client.Send(Encoding.ASCII.GetBytes($"POST /stalled-upload HTTP/1.1\r\nHost: test\r\nContent-Length: {body.Length}\r\n\r\n"));

        // The endpoint reads nothing yet: send until nothing more is taken for half a second.
        client.Blocking = false;
        int sent = 0;
        DateTime lastProgress = DateTime.UtcNow;
        while (DateTime.UtcNow - lastProgress < TimeSpan.FromMilliseconds(500) && sent < body.Length)
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
}
