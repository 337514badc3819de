using System.Net;
using System.Net.Sockets;
using SockNotify.Cli.Echo;

namespace SockNotify.Cli.Tests;

public class EchoEngineTests
{
    public static TheoryData<string> Engines => new(EchoEngines.Names);

    /// <summary>50 concurrent connections, each sending a random amount (up to 64 KiB) in random chunks, all echoed intact.</summary>
    [Theory]
    [MemberData(nameof(Engines))]
    public async Task Every_engine_echoes_every_byte_of_50_concurrent_connections(string engine)
    {
        await using IEchoServer server = await EchoEngines.StartAsync(engine, new IPEndPoint(IPAddress.Loopback, 0), threads: 2);
        Random random = new(engine.GetHashCode(StringComparison.Ordinal));
        byte[][] payloads = Enumerable.Range(0, 50).Select(_ =>
        {
            byte[] payload = new byte[random.Next(1, 64 * 1024 + 1)];
            random.NextBytes(payload);
            return payload;
        }).ToArray();

        byte[][] echoed = await Task.WhenAll(payloads.Select(p => EchoAsync(server.LocalEndPoint, p))).WaitAsync(TimeSpan.FromSeconds(60));

        for (int i = 0; i < payloads.Length; i++)
        {
            Assert.True(payloads[i].AsSpan().SequenceEqual(echoed[i]), $"connection {i}: sent {payloads[i].Length} bytes, got {echoed[i].Length} back, not identical");
        }

        string summary = await server.StopAsync();
        Assert.False(string.IsNullOrEmpty(summary));
    }

    [Theory]
    [MemberData(nameof(Engines))]
    public async Task Every_engine_stops_all_its_threads_every_time(string engine)
    {
        // Stop packets posted together can land in one thread's batch; each thread must still get one.
        for (int i = 0; i < 10; i++)
        {
            IEchoServer server = await EchoEngines.StartAsync(engine, new IPEndPoint(IPAddress.Loopback, 0), threads: 4);
            await Task.Delay(10);
            string summary = await Task.Run(server.StopAsync).WaitAsync(TimeSpan.FromSeconds(10));
            Assert.False(string.IsNullOrEmpty(summary));
        }
    }

    [Fact]
    public async Task The_notify_engine_removes_every_registration_and_closes_every_connection_when_stopped()
    {
        IEchoServer server = await EchoEngines.StartAsync(EchoEngines.Notify, new IPEndPoint(IPAddress.Loopback, 0), threads: 3);
        List<Socket> idle = [];
        try
        {
            for (int i = 0; i < 5; i++)
            {
                Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                idle.Add(client);
                await client.ConnectAsync(server.LocalEndPoint);
                await client.SendAsync(new byte[] { 1 });
                Assert.Equal(1, await client.ReceiveAsync(new byte[1]));
            }

            string summary = await server.StopAsync();
            Assert.Equal("served 5 connections; removed 6 registrations (5 connections open)", summary);
            foreach (Socket client in idle)
            {
                Assert.Equal(0, await client.ReceiveAsync(new byte[1]).WaitAsync(TimeSpan.FromSeconds(5))); // Closed by the server.
            }
        }
        finally
        {
            idle.ForEach(s => s.Dispose());
            await server.DisposeAsync();
        }
    }

    [Fact]
    public async Task The_notify_engine_keeps_echoing_when_the_client_does_not_read_for_a_while()
    {
        await using IEchoServer server = await EchoEngines.StartAsync(EchoEngines.Notify, new IPEndPoint(IPAddress.Loopback, 0), threads: 1);
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await client.ConnectAsync(server.LocalEndPoint);
        byte[] payload = new byte[8 * 1024 * 1024]; // Far more than the socket buffers hold: the server must wait for Out.
        new Random(7).NextBytes(payload);
        Task sending = Task.Run(async () =>
        {
            await client.SendAsync(payload);
            client.Shutdown(SocketShutdown.Send);
        });
        await Task.Delay(300); // Not reading: the server's sends block and it must stop reading too.
        byte[] echoed = await ReadToEndAsync(client);
        await sending;
        Assert.True(payload.AsSpan().SequenceEqual(echoed));
    }

    private static async Task<byte[]> EchoAsync(IPEndPoint server, byte[] payload)
    {
        using Socket client = new(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await client.ConnectAsync(server);
        Task sending = Task.Run(async () =>
        {
            Random random = new(payload.Length);
            for (int offset = 0; offset < payload.Length;)
            {
                int chunk = Math.Min(random.Next(1, 16 * 1024), payload.Length - offset);
                await client.SendAsync(payload.AsMemory(offset, chunk));
                offset += chunk;
            }

            client.Shutdown(SocketShutdown.Send);
        });
        byte[] echoed = await ReadToEndAsync(client);
        await sending;
        return echoed;
    }

    private static async Task<byte[]> ReadToEndAsync(Socket client)
    {
        MemoryStream received = new();
        byte[] buffer = new byte[16 * 1024];
        int count;
        while ((count = await client.ReceiveAsync(buffer)) > 0)
        {
            received.Write(buffer, 0, count);
        }

        return received.ToArray();
    }
}
