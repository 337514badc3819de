using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>
/// A Kestrel app on the chosen transport with the routes the functional tests use, and a record of what the server
/// saw (which transport each connection came through, what request bodies met), for the tests to await.
/// </summary>
internal sealed class TestServer : IAsyncDisposable
{
    /// <summary>The bound on every wait of a test: long enough for a loaded 2-core machine, short enough to fail fast.</summary>
    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private readonly WebApplication _app;

    private TestServer(WebApplication app)
    {
        _app = app;
    }

    /// <summary>The type of each connection's ConnectionContext, as connection middleware saw it.</summary>
    public ConcurrentQueue<string> ConnectionTypes { get; } = new();

    /// <summary>What the body read of <c>/body-end</c> met: the exception, or null for a complete body.</summary>
    public TaskCompletionSource<Exception?> BodyEnd { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when <c>/body-end</c> started reading its body.</summary>
    public TaskCompletionSource BodyStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when <c>/wait-abort</c> started waiting.</summary>
    public TaskCompletionSource WaitingForAbort { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when RequestAborted fired in <c>/wait-abort</c>.</summary>
    public TaskCompletionSource RequestAborted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Set by a test to let <c>/stalled-upload</c> start reading its body.</summary>
    public TaskCompletionSource StartReading { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The bytes <c>/flood</c> has handed to the response so far (each write flushed).</summary>
    public long Flooded => Interlocked.Read(ref _flooded);

    /// <summary>The request <c>/flood</c> serves, for a test to abort.</summary>
    public TaskCompletionSource<HttpContext> Flooding { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completed when <c>/flood</c> stopped writing: with the exception a write met, or null when RequestAborted fired.</summary>
    public TaskCompletionSource<Exception?> FloodEnd { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private long _flooded;

    /// <summary>How many <c>/barrier</c> requests must be in progress at once before any of them is answered.</summary>
    public int BarrierCount { get; set; } = 1;

    private int _barrierArrived;

    private TaskCompletionSource Barrier { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The addresses Kestrel reports it listens on (port 0 resolved).</summary>
    public IReadOnlyList<Uri> Addresses { get; private set; } = [];

    /// <summary>The first address's port.</summary>
    public int Port => Addresses[0].Port;

    public IServiceProvider Services => _app.Services;

    /// <summary>Starts a server on <paramref name="endPoints"/> (127.0.0.1, port 0, if none).</summary>
    public static async Task<TestServer> StartAsync(
        Transport transport, EndPoint[]? endPoints = null, Action<KestrelServerOptions>? kestrel = null, int? listenReceiveBuffer = null,
        Action<IServiceCollection>? services = null, int? listenSendBuffer = null, Action<ListenOptions>? listen = null,
        Action<SockNotifyTransportOptions>? sockNotify = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        services?.Invoke(builder.Services);
        Func<EndPoint, Socket> createListenSocket = endPoint =>
        {
            Socket socket = endPoint is IPEndPoint && transport.IsSockNotify()
                ? SockNotifyTransportOptions.CreateDefaultBoundListenSocket(endPoint)
                : SocketTransportOptions.CreateDefaultBoundListenSocket(endPoint);
            if (listenReceiveBuffer is { } size)
            {
                socket.ReceiveBufferSize = size; // Inherited by accepted sockets, and it stops the kernel's autotuning.
            }

            if (listenSendBuffer is { } sendSize)
            {
                socket.SendBufferSize = sendSize;
            }

            return socket;
        };
        builder.WebHost.UseSockets(options => options.CreateBoundListenSocket = createListenSocket);
        if (transport.IsSockNotify())
        {
            builder.WebHost.UseSockNotify(options =>
            {
                options.Backend = transport.Backend();
                options.IOQueueCount = 2;
                options.CreateBoundListenSocket = createListenSocket;
                sockNotify?.Invoke(options);
            });
        }

        TestServer? server = null;
        builder.WebHost.ConfigureKestrel(options =>
        {
            foreach (EndPoint endPoint in endPoints ?? [new IPEndPoint(IPAddress.Loopback, 0)])
            {
                options.Listen(endPoint, listenOptions =>
                {
                    listenOptions.Use(next => connection =>
                    {
                        server!.ConnectionTypes.Enqueue(connection.GetType().Name);
                        return next(connection);
                    });
                    listen?.Invoke(listenOptions);
                });
            }

            kestrel?.Invoke(options);
        });

        WebApplication app = builder.Build();
        server = new TestServer(app);
        server.MapRoutes(app);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }

        server.Addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>()
            .Addresses.Select(address => new Uri(address)).ToList();
        return server;
    }

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();

    /// <summary>The byte at <paramref name="index"/> of every test payload: not periodic in any power of two, so a misplaced block shows.</summary>
    public static byte PayloadByte(long index) => (byte)(index * 7 + index / 251);

    public static byte[] Payload(int length)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < length; i++)
        {
            bytes[i] = PayloadByte(i);
        }

        return bytes;
    }

    private void MapRoutes(WebApplication app)
    {
        app.UseWebSockets();
        app.Map("/ws", async (HttpContext context) =>
        {
            using System.Net.WebSockets.WebSocket socket = await context.WebSockets.AcceptWebSocketAsync();
            byte[] buffer = new byte[256 * 1024];
            while (true)
            {
                System.Net.WebSockets.ValueWebSocketReceiveResult received = await socket.ReceiveAsync(buffer.AsMemory(), context.RequestAborted);
                if (received.MessageType == System.Net.WebSockets.WebSocketMessageType.Close)
                {
                    await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, null, context.RequestAborted);
                    return;
                }

                await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, context.RequestAborted);
            }
        });
        app.MapGet("/hello", () => "Hello");
        app.MapGet("/n/{number:int}", (int number) => number.ToString(System.Globalization.CultureInfo.InvariantCulture));

        // The SHA-256 of the request body and its length: the client compares both with what it sent.
        app.MapPost("/upload", async (HttpContext context) =>
        {
            (string hash, long length) = await HashAsync(context.Request.Body, context.RequestAborted);
            return $"{length} {hash}";
        });

        app.MapGet("/download/{length:int}", async (HttpContext context, int length) =>
        {
            context.Response.ContentLength = length;
            byte[] chunk = new byte[16 * 1024];
            for (long sent = 0; sent < length;)
            {
                int count = (int)Math.Min(chunk.Length, length - sent);
                for (int i = 0; i < count; i++)
                {
                    chunk[i] = PayloadByte(sent + i);
                }

                await context.Response.Body.WriteAsync(chunk.AsMemory(0, count), context.RequestAborted);
                sent += count;
            }
        });

        app.MapPost("/stalled-upload", async (HttpContext context) =>
        {
            await StartReading.Task.WaitAsync(Patience);
            (string hash, long length) = await HashAsync(context.Request.Body, context.RequestAborted);
            return $"{length} {hash}";
        });

        app.MapPost("/body-end", async (HttpContext context) =>
        {
            try
            {
                BodyStarted.TrySetResult();
                await HashAsync(context.Request.Body, CancellationToken.None);
                BodyEnd.TrySetResult(null);
            }
            catch (Exception ex)
            {
                BodyEnd.TrySetResult(ex);
                throw;
            }
        });

        app.MapPost("/wait-abort", async (HttpContext context) =>
        {
            try
            {
                WaitingForAbort.TrySetResult();
                await Task.Delay(Patience, context.RequestAborted);
            }
            catch (OperationCanceledException)
            {
                RequestAborted.TrySetResult();
            }
        });

        app.MapGet("/delay/{milliseconds:int}", async (int milliseconds) =>
        {
            await Task.Delay(milliseconds);
            return "late";
        });

        app.MapGet("/abort", (HttpContext context) => context.Abort());

        // Writes until the client stops reading (each write flushes, so it waits while the transport's output is full).
        app.MapGet("/flood", async (HttpContext context) =>
        {
            Flooding.TrySetResult(context);
            byte[] chunk = new byte[16 * 1024];
            try
            {
                // Kestrel ignores writes after an abort rather than throwing: the token is what stops the loop.
                while (!context.RequestAborted.IsCancellationRequested)
                {
                    await context.Response.Body.WriteAsync(chunk);
                    Interlocked.Add(ref _flooded, chunk.Length);
                }

                FloodEnd.TrySetResult(null);
            }
            catch (Exception ex)
            {
                FloodEnd.TrySetResult(ex);
            }
        });

        app.MapGet("/barrier", async () =>
        {
            if (Interlocked.Increment(ref _barrierArrived) >= BarrierCount)
            {
                Barrier.TrySetResult();
            }

            await Barrier.Task.WaitAsync(Patience);
            return "through";
        });
    }

    private static async Task<(string Hash, long Length)> HashAsync(Stream body, CancellationToken cancellationToken)
    {
        using IncrementalHash hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        byte[] buffer = new byte[64 * 1024];
        long length = 0;
        int read;
        while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            length += read;
        }

        return (Convert.ToHexString(hash.GetHashAndReset()), length);
    }
}
