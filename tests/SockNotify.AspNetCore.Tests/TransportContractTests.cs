using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>
/// The transport contract Kestrel relies on, checked on the listener and connections directly, without Kestrel in
/// between: the Sockets transport's behaviour is the reference.
/// </summary>
public sealed class TransportContractTests
{
    [Theory]
    [AllTransports]
    public async Task AcceptAsync_returns_null_once_unbound_whether_waiting_or_called_after(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        ValueTask<ConnectionContext?> waiting = listener.AcceptAsync();

        await listener.UnbindAsync();

        Assert.Null(await waiting.AsTask().WaitAsync(TestServer.Patience));
        Assert.Null(await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Patience));
        using Socket late = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<SocketException>(() => late.ConnectAsync(IPAddress.Loopback, listener.Port())); // Not listening any more.
    }

    [Theory]
    [AllTransports]
    public async Task ConnectionClosed_fires_on_the_client_FIN(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        using Socket client = await ConnectAsync(listener);
        await using ConnectionContext connection = (await listener.AcceptAsync())!;

        client.Shutdown(SocketShutdown.Send);

        await WhenCancelled(connection.ConnectionClosed);
        ReadResult end = await connection.Transport.Input.ReadAsync();
        Assert.True(end.IsCompleted);
    }

    [Theory]
    [AllTransports]
    public async Task ConnectionClosed_fires_on_the_client_RST_and_the_input_ends_with_ConnectionResetException(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        Socket client = await ConnectAsync(listener);
        await using ConnectionContext connection = (await listener.AcceptAsync())!;

        client.LingerState = new LingerOption(true, 0);
        client.Dispose();

        await WhenCancelled(connection.ConnectionClosed);
        await Assert.ThrowsAsync<ConnectionResetException>(async () => await connection.Transport.Input.ReadAsync());
    }

    [Theory]
    [AllTransports]
    public async Task Completing_the_output_sends_FIN_and_completes_the_input_with_ConnectionAbortedException(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        using Socket client = await ConnectAsync(listener);
        await using ConnectionContext connection = (await listener.AcceptAsync())!;
        await connection.Transport.Output.WriteAsync("bye"u8.ToArray());

        await connection.Transport.Output.CompleteAsync();

        Assert.Equal("bye", await ReadToEndAsync(client));
        await Assert.ThrowsAsync<ConnectionAbortedException>(async () => await connection.Transport.Input.ReadAsync());
        await WhenCancelled(connection.ConnectionClosed);
    }

    [Theory]
    [AllTransports]
    public async Task Abort_sends_RST_at_once(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        using Socket client = await ConnectAsync(listener);
        await using ConnectionContext connection = (await listener.AcceptAsync())!;

        connection.Abort(new ConnectionAbortedException("test"));

        SocketException reset = await Assert.ThrowsAsync<SocketException>(() => ReadToEndAsync(client));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
        await WhenCancelled(connection.ConnectionClosed);
    }

    [Theory]
    [AllTransports]
    public async Task DisposeAsync_of_an_idle_connection_ends_it_with_FIN(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        using Socket client = await ConnectAsync(listener);
        ConnectionContext connection = (await listener.AcceptAsync())!;

        await connection.DisposeAsync().AsTask().WaitAsync(TestServer.Patience); // With a receive pending.

        Assert.Equal("", await ReadToEndAsync(client));
    }

    [Theory]
    [AllTransports]
    public async Task The_features_Kestrel_asks_for_are_there_and_Set_is_accepted(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        using Socket client = await ConnectAsync(listener);
        await using ConnectionContext connection = (await listener.AcceptAsync())!;

        Assert.NotNull(connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionIdFeature>());
        Assert.Same(connection.Transport, connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionTransportFeature>()!.Transport);
        Assert.NotNull(connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionItemsFeature>());
        Assert.NotNull(connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IMemoryPoolFeature>()!.MemoryPool);
        Assert.NotNull(connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionLifetimeFeature>());
        Assert.Equal(client.LocalEndPoint, connection.RemoteEndPoint);
        if (transport.IsSockNotify())
        {
            // Kestrel adds this one itself over the Sockets transport; SockNotify's connection is its own.
            Assert.Equal(client.LocalEndPoint, connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionEndPointFeature>()!.RemoteEndPoint);
        }

        Assert.Equal(client.LocalEndPoint, connection.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()!.Socket.RemoteEndPoint);
        Assert.False(string.IsNullOrEmpty(connection.ConnectionId));

        Marker marker = new();
        int revision = connection.Features.Revision;
        connection.Features.Set(marker);
        Assert.Same(marker, connection.Features.Get<Marker>());
        Assert.NotEqual(revision, connection.Features.Revision);
    }

    [Theory]
    [AllTransports]
    public async Task A_listener_on_the_IPv6_any_address_accepts_an_IPv4_client_with_its_mapped_address(Transport transport)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport, new IPEndPoint(IPAddress.IPv6Any, 0));
        using Socket client = await ConnectAsync(listener); // IPv4, to 127.0.0.1.
        await using ConnectionContext connection = (await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Patience))!;

        IPEndPoint remote = Assert.IsType<IPEndPoint>(connection.RemoteEndPoint);
        Assert.Equal(((IPEndPoint)client.LocalEndPoint!).Port, remote.Port);
        Assert.True(remote.Address.IsIPv4MappedToIPv6, $"{remote.Address}");
        Assert.Equal(IPAddress.Loopback, remote.Address.MapToIPv4());
        Assert.Equal(transport.IsSockNotify() ? "SockNotifyConnection" : "SocketConnection", connection.GetType().Name);

        await client.SendAsync("ping"u8.ToArray());
        ReadResult read = await connection.Transport.Input.ReadAtLeastAsync(4).AsTask().WaitAsync(TestServer.Patience);
        Assert.Equal("ping"u8.ToArray(), read.Buffer.ToArray());
        connection.Transport.Input.AdvanceTo(read.Buffer.End);
    }

    private static async Task<Socket> ConnectAsync(IConnectionListener listener)
    {
        Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(IPAddress.Loopback, listener.Port());
        return client;
    }

    private static async Task<string> ReadToEndAsync(Socket client)
    {
        using CancellationTokenSource timeout = new(TestServer.Patience);
        byte[] buffer = new byte[1024];
        int total = 0;
        int read;
        while ((read = await client.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None, timeout.Token)) > 0)
        {
            total += read;
        }

        return System.Text.Encoding.ASCII.GetString(buffer, 0, total);
    }

    private static Task WhenCancelled(CancellationToken token)
    {
        TaskCompletionSource cancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);
        token.Register(() => cancelled.TrySetResult());
        return cancelled.Task.WaitAsync(TestServer.Patience, CancellationToken.None);
    }

    private sealed class Marker;
}
