using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using SockNotify.Cli.Echo;

namespace SockNotify.Cli;

/// <summary><c>socknotify echo</c>: a TCP echo server on the chosen engine, until SIGINT or SIGTERM.</summary>
internal static class EchoCommand
{
    /// <summary>With <c>--stats</c>, a line the bench writes to standard input to ask for the allocation counter.</summary>
    public const string StatsRequest = "stats";

    private const int MaxThreads = 1024;

    /// <summary>The start of the reply: the bytes allocated on the managed heap so far, process-wide.</summary>
    public const string StatsReplyPrefix = "allocated ";

    /// <summary>With <c>--stats</c>, asks for a full, compacting garbage collection before memory is read.</summary>
    public const string CollectRequest = "collect";

    /// <summary>The start of the reply once the collection is over, followed by the live managed heap in bytes.</summary>
    public const string CollectReplyPrefix = "collected ";

    public static Command Create()
    {
        Option<string> engine = new("--engine")
        {
            Description = "notify: CompletionPort, one-shot level, batched re-arm (the seed's multithreaded server); "
                + "sockets: System.Net.Sockets async/await; kestrel: Kestrel's default transport with a ConnectionHandler; "
                + "kestrel-socknotify: the same on the SockNotify transport.",
            DefaultValueFactory = _ => EchoEngines.Notify,
        };
        engine.AcceptOnlyFromAmong(EchoEngines.Names);

        Option<int> threads = new("--threads")
        {
            Description = "Server threads for the notify and completion engines. Defaults to the processor count.",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        threads.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < 1 or > MaxThreads)
            {
                result.AddError($"--threads must be between 1 and {MaxThreads}.");
            }
        });

        Option<int> port = CommandOptions.ListenPort();
        Option<IPAddress> address = CommandOptions.ListenAddress();

        Option<bool> stats = new("--stats")
        {
            Description = "Answer each 'stats' line on standard input with the bytes allocated so far (for socknotify bench).",
            Hidden = true,
        };

        Command command = new("echo", "Run a TCP echo server until SIGINT or SIGTERM.") { engine, threads, port, address, stats };
        command.SetAction((parsed, _) => RunAsync(
            parsed.GetValue(engine)!, parsed.GetValue(threads), new IPEndPoint(parsed.GetValue(address)!, parsed.GetValue(port)), parsed.GetValue(stats)));
        return command;
    }

    private static async Task<int> RunAsync(string engine, int threads, IPEndPoint endPoint, bool stats)
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
            if (stats)
            {
                _ = Task.Run(AnswerStatsRequests);
            }

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

    private static void AnswerStatsRequests()
    {
        while (Console.ReadLine() is { } line)
        {
            if (line == StatsRequest)
            {
                Console.WriteLine($"{StatsReplyPrefix}{GC.GetTotalAllocatedBytes(precise: true)}");
            }
            else if (line == CollectRequest)
            {
                System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
                GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
                GC.WaitForPendingFinalizers();
                Console.WriteLine($"{CollectReplyPrefix}{GC.GetTotalMemory(forceFullCollection: false)}");
            }
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
