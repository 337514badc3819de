using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using SockNotify.AspNetCore;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>
/// <see cref="IWebHostBuilder"/> extension methods to make SockNotify Kestrel's transport for TCP endpoints.
/// </summary>
public static class WebHostBuilderSockNotifyExtensions
{
    /// <summary>
    /// Specify SockNotify as the transport Kestrel uses for TCP endpoints, on Linux x86-64; elsewhere this changes
    /// nothing. Kestrel's Sockets transport stays registered for the endpoints SockNotify does not bind (Unix domain
    /// sockets, file handles).
    /// </summary>
    /// <param name="hostBuilder">The Microsoft.AspNetCore.Hosting.IWebHostBuilder to configure.</param>
    /// <returns>The Microsoft.AspNetCore.Hosting.IWebHostBuilder.</returns>
    public static IWebHostBuilder UseSockNotify(this IWebHostBuilder hostBuilder) => hostBuilder.UseSockNotify(static _ => { });

    /// <summary>
    /// Specify SockNotify as the transport Kestrel uses for TCP endpoints, on Linux x86-64; elsewhere this changes
    /// nothing. Kestrel's Sockets transport stays registered for the endpoints SockNotify does not bind (Unix domain
    /// sockets, file handles).
    /// </summary>
    /// <param name="hostBuilder">The Microsoft.AspNetCore.Hosting.IWebHostBuilder to configure.</param>
    /// <param name="configureOptions">A callback to configure transport options.</param>
    /// <returns>The Microsoft.AspNetCore.Hosting.IWebHostBuilder.</returns>
    public static IWebHostBuilder UseSockNotify(this IWebHostBuilder hostBuilder, Action<SockNotifyTransportOptions> configureOptions)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);
        ArgumentNullException.ThrowIfNull(configureOptions);
        if (!IsSupported)
        {
            return hostBuilder;
        }

        return hostBuilder.ConfigureServices(services =>
        {
            // Kestrel asks the factories registered last first; the Sockets transport, registered before this one, takes
            // what this one declines. UseKestrel registers it only if no factory is registered yet, so when this runs
            // first it is registered here.
            if (!services.Any(service => service.ServiceType == typeof(IConnectionListenerFactory)
                    && service.ImplementationType == typeof(SocketTransportFactory)))
            {
                services.AddSingleton<IConnectionListenerFactory, SocketTransportFactory>();
            }

            services.AddSingleton<IConnectionListenerFactory, SockNotifyTransportFactory>();
            services.Configure(configureOptions);
        });
    }

    /// <summary>Where SockNotify's completion port runs: Linux on x86-64 for now.</summary>
    private static bool IsSupported => OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64;
}
