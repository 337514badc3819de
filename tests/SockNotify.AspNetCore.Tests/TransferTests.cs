using System.Net;
using System.Security.Cryptography;
using System.Text;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>Bytes through the transport: large bodies both ways, pipelining, many connections at once.</summary>
public sealed class TransferTests
{
    [Theory]
    [AllTransports]
    public async Task A_10_MiB_upload_arrives_byte_for_byte(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        byte[] payload = TestServer.Payload(10 * 1024 * 1024);

        using HttpClient client = new() { Timeout = TestServer.Patience };
        using HttpResponseMessage response = await client.PostAsync($"http://127.0.0.1:{server.Port}/upload", new ByteArrayContent(payload));

        response.EnsureSuccessStatusCode();
        Assert.Equal($"{payload.Length} {Convert.ToHexString(SHA256.HashData(payload))}", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [AllTransports]
    public async Task A_1_MiB_download_arrives_byte_for_byte(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        const int Length = 1024 * 1024;

        using HttpClient client = new() { Timeout = TestServer.Patience };
        byte[] body = await client.GetByteArrayAsync($"http://127.0.0.1:{server.Port}/download/{Length}");

        Assert.Equal(Length, body.Length);
        for (int i = 0; i < body.Length; i++)
        {
            if (body[i] != TestServer.PayloadByte(i))
            {
                Assert.Fail($"Byte {i} is {body[i]}, not {TestServer.PayloadByte(i)}.");
            }
        }
    }

    [Theory]
    [AllTransports]
    public async Task Sixteen_requests_pipelined_in_one_segment_are_answered_in_order(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        using RawHttpConnection connection = await RawHttpConnection.ConnectAsync(IPAddress.Loopback, server.Port);

        StringBuilder requests = new();
        for (int i = 0; i < 16; i++)
        {
            requests.Append(System.Globalization.CultureInfo.InvariantCulture, $"GET /n/{i} HTTP/1.1\r\nHost: test\r\n\r\n");
        }

        await connection.SendAsync(requests.ToString()); // One send of about 500 bytes: one segment on loopback.

        for (int i = 0; i < 16; i++)
        {
            (int status, byte[] body) = await connection.ReadResponseAsync();
            Assert.Equal(200, status);
            Assert.Equal(i.ToString(System.Globalization.CultureInfo.InvariantCulture), Encoding.ASCII.GetString(body));
        }
    }

    [Theory]
    [AllTransports]
    public async Task A_hundred_clients_are_served_at_once(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        const int Clients = 100;
        server.BarrierCount = Clients; // No response before all 100 requests are in the server at the same time.

        using HttpClient client = new(new SocketsHttpHandler { MaxConnectionsPerServer = Clients }) { Timeout = TestServer.Patience };
        string[] answers = await Task.WhenAll(Enumerable.Range(0, Clients)
            .Select(_ => client.GetStringAsync($"http://127.0.0.1:{server.Port}/barrier")));

        Assert.All(answers, answer => Assert.Equal("through", answer));
        Assert.Equal(Clients, server.ConnectionTypes.Count);
    }
}
