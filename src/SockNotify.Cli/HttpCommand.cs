using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;
using SockNotify.Cli.Http;

namespace SockNotify.Cli;

/// <summary><c>socknotify http</c>: TechEmpower's plaintext and JSON endpoints on Kestrel, until SIGINT or SIGTERM.</summary>
internal static class HttpCommand
{
    public static Command Create()
    {
        Option<string> transport = new("--transport")
        {
            Description = "sockets: Kestrel's default transport; socknotify: UseSockNotify(). Defaults to socknotify.",
            DefaultValueFactory = _ => TechEmpowerApp.SockNotify,
        };
        transport.AcceptOnlyFromAmong(TechEmpowerApp.Transports);

        Option<CompletionPortBackend> backend = CommandOptions.Backend("The socknotify transport's backend. Defaults to auto.");

        Option<int> port = CommandOptions.ListenPort();
        Option<IPAddress> address = CommandOptions.ListenAddress();

        Command command = new("http", "Serve TechEmpower's GET /plaintext and GET /json on Kestrel until SIGINT or SIGTERM.")
        {
            transport, backend, port, address,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(backend) is { Implicit: false } && result.GetValue(transport) != TechEmpowerApp.SockNotify)
            {
                result.AddError("--backend applies to --transport socknotify only.");
            }
        });
        command.SetAction((parsed, _) => RunAsync(
            parsed.GetValue(transport)!, parsed.GetValue(backend), new IPEndPoint(parsed.GetValue(address)!, parsed.GetValue(port))));
        return command;
    }

    private static async Task<int> RunAsync(string transport, CompletionPortBackend backend, IPEndPoint endPoint)
    {
        using SemaphoreSlim stop = new(0);
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        WebApplication app = TechEmpowerApp.Build(transport, backend, endPoint);
        await using (app.ConfigureAwait(false))
        {
            try
            {
                await app.StartAsync().ConfigureAwait(false);
            }
            catch (IOException e) when (e.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
            {
                await Console.Error.WriteLineAsync($"socknotify: port {endPoint.Port} on {endPoint.Address} is already in use.").ConfigureAwait(false);
                return ExitCodes.Failure;
            }
            catch (SocketException e)
            {
                await Console.Error.WriteLineAsync($"socknotify: cannot listen on {endPoint}: {e.Message}").ConfigureAwait(false);
                return ExitCodes.Failure;
            }

            Uri bound = new(app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single());
            string host = endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]" : endPoint.Address.ToString();
            Console.WriteLine($"listening on {host}:{bound.Port}");

            await stop.WaitAsync().ConfigureAwait(false);
            await app.StopAsync().ConfigureAwait(false);
            Console.WriteLine($"stopped ({transport})");
        }

        return ExitCodes.Success;

        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // Shut down cleanly instead of being terminated.
            stop.Release();
        }
    }
}
