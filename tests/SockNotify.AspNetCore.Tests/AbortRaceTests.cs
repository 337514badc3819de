using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using SockNotify.AspNetCore.Tests.Support;

namespace SockNotify.AspNetCore.Tests;

/// <summary>
/// Abort from another thread while the connection's loops start receives and sends without a lock (the port aborts a
/// start that races its CloseSocket): Abort never throws, the connection ends, DisposeAsync returns, and nothing the
/// port lends is left behind.
/// </summary>
public sealed class AbortRaceTests
{
    [Theory]
    [SockNotifyTransports(false)]
    [SockNotifyTransports(true)]
    public async Task Aborts_that_race_the_loops_starts_end_every_connection_and_leave_nothing_in_flight(Transport transport, bool serverSends)
    {
        await using IConnectionListener listener = await Listeners.BindAsync(transport);
        long operationsBefore = SockNotifyFigures.Read("socknotify.operation.active");
        byte[] chunk = new byte[16 * 1024];
        for (int round = 0; round < 40; round++)
        {
            using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(IPAddress.Loopback, listener.Port());
            ConnectionContext connection = (await listener.AcceptAsync().AsTask().WaitAsync(TestServer.Patience))!;
            using CancellationTokenSource stop = new();

            // Traffic that keeps one loop starting operations back to back: the client floods the server's receive
            // loop (the application reads everything), or the application floods the send loop (the client reads).
            Task traffic = serverSends
                ? Task.Run(async () =>
                {
                    try
                    {
                        while (!stop.IsCancellationRequested)
                        {
                            FlushResult flushed = await connection.Transport.Output.WriteAsync(chunk);
                            if (flushed.IsCompleted || flushed.IsCanceled)
                            {
                                break; // The abort ended the send loop, which completed the output's reader.
                            }
                        }
                    }
                    catch (Exception e) when (e is ConnectionAbortedException or IOException)
                    {
                        // The abort's reason. Anything else (a start refused as not associated, say) fails the test.
                    }
                })
                : Task.Run(async () =>
                {
                    try
                    {
                        while (!stop.IsCancellationRequested)
                        {
                            ReadResult read = await connection.Transport.Input.ReadAsync();
                            connection.Transport.Input.AdvanceTo(read.Buffer.End);
                            if (read.IsCompleted)
                            {
                                break;
                            }
                        }
                    }
                    catch (Exception e) when (e is ConnectionAbortedException or ConnectionResetException or IOException)
                    {
                    }
                });
            Task peer = Task.Run(async () =>
            {
                byte[] buffer = new byte[64 * 1024];
                try
                {
                    while (!stop.IsCancellationRequested)
                    {
                        if (serverSends)
                        {
                            if (await client.ReceiveAsync(buffer) == 0)
                            {
                                break;
                            }
                        }
                        else
                        {
                            await client.SendAsync(chunk);
                        }
                    }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    // The abort's RST, or the round's end disposing the client while a send was still starting.
                }
            });

            await Task.Delay(round % 5); // Let the loops run a varying while before the abort lands.
            Exception? thrown = await Record.ExceptionAsync(() => Task.Run(() => connection.Abort(new ConnectionAbortedException("race"))));
            Assert.Null(thrown);

            Assert.True(connection.ConnectionClosed.WaitHandle.WaitOne(TestServer.Patience), $"round {round}: ConnectionClosed did not fire");
            stop.Cancel();
            await traffic.WaitAsync(TestServer.Patience);
            await connection.DisposeAsync().AsTask().WaitAsync(TestServer.Patience);
            client.Dispose();
            await peer.WaitAsync(TestServer.Patience);
        }

        Assert.Equal(operationsBefore, SockNotifyFigures.Read("socknotify.operation.active"));
        Assert.Equal(0, SockNotifyFigures.Read("socknotify.pool.buffer.lent"));
    }
}
