using System.Net;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>A transport's listener bound without Kestrel, for tests of the transport's own contract.</summary>
internal static class Listeners
{
    public static async Task<IConnectionListener> BindAsync(Transport transport, EndPoint? endPoint = null)
    {
        IConnectionListenerFactory factory = transport.IsSockNotify()
            ? new SockNotifyTransportFactory(
                Options.Create(new SockNotifyTransportOptions { Backend = transport.Backend(), IOQueueCount = 2 }), NullLoggerFactory.Instance)
            : new SocketTransportFactory(Options.Create(new SocketTransportOptions()), NullLoggerFactory.Instance);
        return await factory.BindAsync(endPoint ?? new IPEndPoint(IPAddress.Loopback, 0));
    }

    public static int Port(this IConnectionListener listener) => ((IPEndPoint)listener.EndPoint).Port;
}
