using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SockNotify.Cli.Echo;

/// <summary>
/// Kestrel with a <see cref="ConnectionHandler"/> that echoes, on its default (Sockets) transport or on SockNotify's.
/// </summary>
internal sealed class KestrelEchoServer : IEchoServer
{
    private readonly WebApplication _app;

    private KestrelEchoServer(WebApplication app, IPEndPoint localEndPoint)
    {
        _app = app;
        LocalEndPoint = localEndPoint;
    }

    public IPEndPoint LocalEndPoint { get; }

    /// <param name="endPoint">Where to listen.</param>
    /// <param name="sockNotifyBackend">The SockNotify transport's backend; null for Kestrel's Sockets transport.</param>
    public static async Task<KestrelEchoServer> StartAsync(IPEndPoint endPoint, CompletionPortBackend? sockNotifyBackend = null)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (sockNotifyBackend is { } backend)
        {
            builder.WebHost.UseSockNotify(options => options.Backend = backend);
        }

        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(endPoint, listen => listen.UseConnectionHandler<EchoConnectionHandler>()));
        WebApplication app = builder.Build();
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        string address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        Uri uri = new(address);
        return new KestrelEchoServer(app, new IPEndPoint(endPoint.Address, uri.Port));
    }

    public async Task<string> StopAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        return "Kestrel stopped";
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync().ConfigureAwait(false);

    private sealed class EchoConnectionHandler : ConnectionHandler
    {
        public override async Task OnConnectedAsync(ConnectionContext connection)
        {
            PipeReader input = connection.Transport.Input;
            PipeWriter output = connection.Transport.Output;
            while (true)
            {
                ReadResult read = await input.ReadAsync().ConfigureAwait(false);
                ReadOnlySequence<byte> buffer = read.Buffer;
                foreach (ReadOnlyMemory<byte> segment in buffer)
                {
                    output.Write(segment.Span);
                }

                input.AdvanceTo(buffer.End);
                FlushResult flushed = await output.FlushAsync().ConfigureAwait(false);
                if (read.IsCompleted || read.IsCanceled || flushed.IsCompleted)
                {
                    return;
                }
            }
        }
    }
}
