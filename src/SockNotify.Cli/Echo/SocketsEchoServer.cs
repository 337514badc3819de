using System.Net;
using System.Net.Sockets;

namespace SockNotify.Cli.Echo;

/// <summary>The echo server a .NET developer would write with System.Net.Sockets: async/await, a task per connection.</summary>
internal sealed class SocketsEchoServer : IEchoServer
{
    private const int BufferSize = 4096;

    private readonly Socket _listener;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _acceptLoop;
    private readonly HashSet<Task> _connections = [];
    private long _accepted;

    private SocketsEchoServer(Socket listener)
    {
        _listener = listener;
        _acceptLoop = AcceptLoopAsync();
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public static SocketsEchoServer Start(IPEndPoint endPoint)
    {
        Socket listener = new(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endPoint);
            listener.Listen();
            return new SocketsEchoServer(listener);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    public async Task<string> StopAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        _listener.Dispose();
        await _acceptLoop.ConfigureAwait(false);
        Task[] connections;
        lock (_connections)
        {
            connections = [.. _connections];
        }

        await Task.WhenAll(connections).ConfigureAwait(false);
        return $"served {Interlocked.Read(ref _accepted)} connections";
    }

    public async ValueTask DisposeAsync()
    {
        if (!_stopping.IsCancellationRequested)
        {
            await StopAsync().ConfigureAwait(false);
        }

        _stopping.Dispose();
    }

    private async Task AcceptLoopAsync()
    {
        while (true)
        {
            Socket connection;
            try
            {
                connection = await _listener.AcceptAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            connection.NoDelay = true;
            Task serving = EchoAsync(connection);
            lock (_connections)
            {
                _connections.Add(serving);
            }

            _ = serving.ContinueWith(
                done =>
                {
                    lock (_connections)
                    {
                        _connections.Remove(done);
                    }
                },
                CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    private async Task EchoAsync(Socket connection)
    {
        using (connection)
        {
            byte[] buffer = new byte[BufferSize];
            try
            {
                int received;
                while ((received = await connection.ReceiveAsync(buffer, _stopping.Token).ConfigureAwait(false)) > 0)
                {
                    await connection.SendAsync(buffer.AsMemory(0, received), _stopping.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException)
            {
                // Stopped, or the client reset the connection.
            }
        }
    }
}
