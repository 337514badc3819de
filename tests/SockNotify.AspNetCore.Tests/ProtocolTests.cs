using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>What Kestrel layers over the transport works on it: TLS, HTTP/2 without TLS, WebSockets.</summary>
public sealed class ProtocolTests
{
    [Theory]
    [AllTransports]
    public async Task HTTPS_with_a_certificate_made_here_serves(Transport transport)
    {
        using X509Certificate2 certificate = CreateCertificate();
        await using TestServer server = await TestServer.StartAsync(transport, listen: listen => listen.UseHttps(certificate));

        using HttpClient client = new(new HttpClientHandler
        {
            ServerCertificateCustomValidationCallback = (_, presented, _, _) => presented?.Thumbprint == certificate.Thumbprint,
        }) { Timeout = TestServer.Patience };
        Assert.Equal("Hello", await client.GetStringAsync($"https://127.0.0.1:{server.Port}/hello"));
        byte[] body = await client.GetByteArrayAsync($"https://127.0.0.1:{server.Port}/download/{256 * 1024}");
        Assert.Equal(TestServer.Payload(256 * 1024), body);
    }

    [Theory]
    [AllTransports]
    public async Task HTTP2_without_TLS_multiplexes_streams(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport, listen: listen => listen.Protocols = HttpProtocols.Http2);

        using HttpClient client = new() { Timeout = TestServer.Patience };
        byte[][] bodies = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            using HttpRequestMessage request = new(HttpMethod.Get, $"http://127.0.0.1:{server.Port}/download/{128 * 1024}")
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            using HttpResponseMessage response = await client.SendAsync(request);
            Assert.Equal(HttpVersion.Version20, response.Version);
            return await response.Content.ReadAsByteArrayAsync();
        }));

        Assert.All(bodies, body => Assert.Equal(TestServer.Payload(128 * 1024), body));
        Assert.Single(server.ConnectionTypes); // Eight streams, one connection.
    }

    [Theory]
    [AllTransports]
    public async Task A_WebSocket_echoes(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);
        using ClientWebSocket socket = new();
        using CancellationTokenSource timeout = new(TestServer.Patience);
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{server.Port}/ws"), timeout.Token);

        foreach (int length in new[] { 1, 1000, 200 * 1024 })
        {
            byte[] message = TestServer.Payload(length);
            await socket.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
            byte[] echoed = new byte[length];
            int received = 0;
            while (received < length)
            {
                WebSocketReceiveResult result = await socket.ReceiveAsync(echoed.AsMemory(received).ToArraySegment(), timeout.Token);
                received += result.Count;
            }

            Assert.Equal(message, echoed);
        }

        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        Assert.Equal(WebSocketState.Closed, socket.State);
    }

    private static X509Certificate2 CreateCertificate()
    {
        using RSA key = RSA.Create(2048);
        CertificateRequest request = new("CN=localhost", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], critical: false));
        SubjectAlternativeNameBuilder names = new();
        names.AddIpAddress(IPAddress.Loopback);
        names.AddDnsName("localhost");
        request.CertificateExtensions.Add(names.Build());
        using X509Certificate2 ephemeral = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
    }
}

internal static class MemoryExtensions
{
    public static ArraySegment<byte> ToArraySegment(this Memory<byte> memory) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(memory, out ArraySegment<byte> segment) ? segment : throw new ArgumentException("Not an array.");
}
