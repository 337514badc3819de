using System.Net;
using System.Net.Sockets;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>What Kestrel can bind on each transport, and which transport takes which endpoint.</summary>
public sealed class BindingTests
{
    [Theory]
    [AllTransports]
    public async Task Port_zero_binds_a_free_port_and_serves_on_it(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport);

        Assert.NotEqual(0, server.Port);
        using HttpClient client = new() { Timeout = TestServer.Patience };
        Assert.Equal("Hello", await client.GetStringAsync($"http://127.0.0.1:{server.Port}/hello"));
        Assert.All(server.ConnectionTypes, type => Assert.Equal(ExpectedConnectionType(transport), type));
    }

    [Theory]
    [AllTransports]
    public async Task An_address_in_use_fails_the_start_with_AddressInUseException(Transport transport)
    {
        using Socket occupant = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        occupant.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        occupant.Listen();
        int port = ((IPEndPoint)occupant.LocalEndPoint!).Port;

        Exception failure = await Assert.ThrowsAnyAsync<Exception>(() => TestServer.StartAsync(transport, [new IPEndPoint(IPAddress.Loopback, port)]));

        Assert.IsType<Microsoft.AspNetCore.Connections.AddressInUseException>(failure.InnerException ?? failure);
    }

    [Theory]
    [AllTransports]
    public async Task An_IPv6_address_in_use_fails_the_start_with_AddressInUseException(Transport transport)
    {
        using Socket occupant = new(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
        occupant.Bind(new IPEndPoint(IPAddress.IPv6Loopback, 0));
        occupant.Listen();
        int port = ((IPEndPoint)occupant.LocalEndPoint!).Port;

        Exception failure = await Assert.ThrowsAnyAsync<Exception>(() => TestServer.StartAsync(transport, [new IPEndPoint(IPAddress.IPv6Loopback, port)]));

        Assert.IsType<Microsoft.AspNetCore.Connections.AddressInUseException>(failure.InnerException ?? failure);
    }

    /// <summary>Dual mode takes the IPv4 port too: a port an IPv4 listener holds cannot be bound on [::].</summary>
    [Theory]
    [AllTransports]
    public async Task The_IPv6_any_address_is_in_use_when_an_IPv4_listener_holds_the_port(Transport transport)
    {
        using Socket occupant = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        occupant.Bind(new IPEndPoint(IPAddress.Any, 0));
        occupant.Listen();
        int port = ((IPEndPoint)occupant.LocalEndPoint!).Port;

        Exception failure = await Assert.ThrowsAnyAsync<Exception>(() => TestServer.StartAsync(transport, [new IPEndPoint(IPAddress.IPv6Any, port)]));

        Assert.IsType<Microsoft.AspNetCore.Connections.AddressInUseException>(failure.InnerException ?? failure);
    }

    [Theory]
    [AllTransports]
    public async Task IPv6_loopback_serves(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport, [new IPEndPoint(IPAddress.IPv6Loopback, 0)]);

        using HttpClient client = new() { Timeout = TestServer.Patience };
        Assert.Equal("Hello", await client.GetStringAsync($"http://[::1]:{server.Port}/hello"));
        Assert.Equal(ExpectedConnectionType(transport), Assert.Single(server.ConnectionTypes));
    }

    [Theory]
    [AllTransports]
    public async Task The_IPv6_any_address_takes_IPv4_clients_too(Transport transport)
    {
        await using TestServer server = await TestServer.StartAsync(transport, [new IPEndPoint(IPAddress.IPv6Any, 0)]);

        using HttpClient client = new() { Timeout = TestServer.Patience };
        Assert.Equal("Hello", await client.GetStringAsync($"http://127.0.0.1:{server.Port}/hello"));
        Assert.Equal("Hello", await client.GetStringAsync($"http://[::1]:{server.Port}/hello"));

        // Both through the transport under test: SockNotify serves [::] itself rather than leaving it to Sockets.
        Assert.Equal([ExpectedConnectionType(transport), ExpectedConnectionType(transport)], server.ConnectionTypes);
    }

    [Theory]
    [AllTransports]
    public async Task A_Unix_domain_socket_is_served_by_the_Sockets_transport(Transport transport)
    {
        string path = Path.Combine(Path.GetTempPath(), $"socknotify-{Guid.NewGuid():N}.sock");
        try
        {
            await using TestServer server = await TestServer.StartAsync(transport, [new UnixDomainSocketEndPoint(path)]);

            using RawHttpConnection connection = await RawHttpConnection.ConnectAsync(new UnixDomainSocketEndPoint(path));
            await connection.SendAsync("GET /hello HTTP/1.1\r\nHost: test\r\n\r\n");
            (int status, byte[] body) = await connection.ReadResponseAsync();

            Assert.Equal(200, status);
            Assert.Equal("Hello"u8.ToArray(), body);
            Assert.Equal(ExpectedConnectionType(Transport.Sockets), Assert.Single(server.ConnectionTypes));
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>The ConnectionContext type each transport hands Kestrel (the Sockets transport's is internal: named here).</summary>
    private static string ExpectedConnectionType(Transport transport) =>
        transport.IsSockNotify() ? "SockNotifyConnection" : "SocketConnection";
}
