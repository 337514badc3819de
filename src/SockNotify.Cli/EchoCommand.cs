using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using SockNotify.Cli.Echo;

namespace SockNotify.Cli;

/// <summary><c>socknotify echo</c>: a TCP echo server on the chosen engine, until SIGINT or SIGTERM.</summary>
internal static class EchoCommand
{
    public static Command Create()
    {
        Option<string> engine = new("--engine")
        {
            Description = "notify: CompletionPort, one-shot level, batched re-arm (the seed's multithreaded server); "
                + "sockets: System.Net.Sockets async/await; kestrel: Kestrel's default transport with a ConnectionHandler.",
            DefaultValueFactory = _ => EchoEngines.Notify,
        };
        engine.AcceptOnlyFromAmong(EchoEngines.Names);

        Option<int> threads = new("--threads")
        {
            Description = "Server threads for the notify engine. Defaults to the processor count.",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        threads.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() < 1)
            {
                result.AddError("--threads must be at least 1.");
            }
        });

        Option<int> port = new("--port")
        {
            Description = "TCP port to listen on; 0 picks a free one. Defaults to 5000.",
            DefaultValueFactory = _ => 5000,
        };
        port.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < IPEndPoint.MinPort or > IPEndPoint.MaxPort)
            {
                result.AddError($"--port must be between {IPEndPoint.MinPort} and {IPEndPoint.MaxPort}.");
            }
        });

        Option<IPAddress> address = new("--address")
        {
            Description = "Address to listen on. Defaults to 127.0.0.1.",
            DefaultValueFactory = _ => IPAddress.Loopback,
            CustomParser = result =>
            {
                string text = result.Tokens.Single().Value;
                if (IPAddress.TryParse(text, out IPAddress? parsed))
                {
                    return parsed;
                }

                result.AddError($"'{text}' is not an IP address.");
                return null;
            },
        };

        Command command = new("echo", "Run a TCP echo server until SIGINT or SIGTERM.") { engine, threads, port, address };
        command.SetAction((parsed, _) => RunAsync(
            parsed.GetValue(engine)!, parsed.GetValue(threads), new IPEndPoint(parsed.GetValue(address)!, parsed.GetValue(port))));
        return command;
    }

    private static async Task<int> RunAsync(string engine, int threads, IPEndPoint endPoint)
    {
        using SemaphoreSlim stop = new(0);
        using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

        IEchoServer server;
        try
        {
            server = await EchoEngines.StartAsync(engine, endPoint, threads).ConfigureAwait(false);
        }
        catch (Exception e) when (IsAddressInUse(e))
        {
            await Console.Error.WriteLineAsync($"socknotify: port {endPoint.Port} on {endPoint.Address} is already in use.").ConfigureAwait(false);
            return ExitCodes.Failure;
        }
        catch (SocketException e)
        {
            await Console.Error.WriteLineAsync($"socknotify: cannot listen on {endPoint}: {e.Message}").ConfigureAwait(false);
            return ExitCodes.Failure;
        }

        await using (server.ConfigureAwait(false))
        {
            Console.WriteLine($"listening on {FormatEndPoint(server.LocalEndPoint)}");
            await stop.WaitAsync().ConfigureAwait(false);
            string summary = await server.StopAsync().ConfigureAwait(false);
            Console.WriteLine($"stopped ({engine}): {summary}");
        }

        return ExitCodes.Success;

        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // Shut down cleanly instead of being terminated.
            stop.Release();
        }
    }

    private static bool IsAddressInUse(Exception e) => e switch
    {
        SocketException socket => socket.SocketErrorCode == SocketError.AddressAlreadyInUse,
        Microsoft.AspNetCore.Connections.AddressInUseException => true,
        IOException { InnerException: { } inner } => IsAddressInUse(inner),
        _ => false,
    };

    private static string FormatEndPoint(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{endPoint.Address}]:{endPoint.Port}" : $"{endPoint.Address}:{endPoint.Port}";
}
