using System.CommandLine;
using SockNotify.Cli.Echo;
using SockNotify.Cli.Soak;

namespace SockNotify.Cli;

/// <summary><c>socknotify soak</c>: an echo engine under connection churn for a long time, every figure bounded.</summary>
internal static class SoakCommand
{
    private const int MaxConnections = 30_000;
    private const int MaxThreads = 256;

    public static Command Create()
    {
        Option<string> engine = new("--engine")
        {
            Description = "The echo engine to soak (see socknotify echo). Defaults to notify.",
            DefaultValueFactory = _ => EchoEngines.Notify,
        };
        engine.AcceptOnlyFromAmong(EchoEngines.Names);
        Option<CompletionPortBackend> backend = CommandOptions.Backend(
            "The CompletionPort backend of the notify and completion engines (operations run on it; notifications use epoll either way). "
            + "Defaults to auto.");
        Option<int> connections = CommandOptions.Positive("--connections",
            "Client connections churning at once (each also open on the server: two descriptors in this process). Lowered, with a note, "
            + "until the descriptor bound fits under the open-files limit. Defaults to 9000.", 9000, max: MaxConnections);
        Option<TimeSpan> duration = CommandOptions.Duration("--duration", "How long to churn. Defaults to 10m.", TimeSpan.FromMinutes(10));
        Option<TimeSpan> interval = CommandOptions.Duration("--interval", "Time between lines of figures. Defaults to 10s.", TimeSpan.FromSeconds(10));
        Option<int?> seed = new("--seed") { Description = "Seed of the clients' random choices. Defaults to a random one, printed." };
        Option<int> threads = CommandOptions.Positive("--threads",
            "Server threads of the notify and completion engines. Defaults to the processor count.", Environment.ProcessorCount, max: MaxThreads);

        Command command = new("soak",
            "Churn connections against an in-process echo server on 127.0.0.1 (connect, echo 1 B to 64 KiB in random chunks, then "
            + "half-close, close or reset, reconnect), verify every byte, and print the figures every interval. Exit 1 on a wrong byte, "
            + "an error the client did not cause, a stall, or a figure out of its bound after the warm-up (20 % of the duration, at "
            + "least 10 s). With N connections: descriptors <= at start + 3N + 64 (two per connection, and closes the server has not "
            + "processed yet); SockNotify registrations and operations in flight <= 2N + 64; pooled "
            + "buffers lent <= N + 64; RSS <= 1.5 x its warm-up peak + 64 MiB + 16 KiB x N; managed heap after a full GC <= 1.5 x its "
            + "warm-up peak + 16 MiB + 16 KiB x N (the clients' sends); connections keep ending. Once the clients have left, the server must hold exactly what it held at start "
            + "(sockets, kernel objects, SockNotify registrations and operations, no buffer lent), and once stopped, nothing.")
        {
            engine, backend, connections, duration, interval, seed, threads,
        };
        command.Validators.Add(result =>
        {
            // From the tokens: reading a value its option refused would throw, and that option reports it already.
            string chosen = result.GetResult(engine)?.Tokens is [.., var engineToken] ? engineToken.Value : EchoEngines.Notify;
            string? backendName = result.GetResult(backend)?.Tokens is [.., var backendToken] ? backendToken.Value : null;
            if (backendName is not null && backendName != CommandOptions.BackendNames[0]
                && EchoEngines.Names.Contains(chosen) && !EchoEngines.OnCompletionPort.Contains(chosen))
            {
                result.AddError($"--backend applies to the {string.Join(" and ", EchoEngines.OnCompletionPort)} engines; {chosen} has no CompletionPort.");
            }
        });
        command.SetAction((parsed, _) => new SoakRunner(
            new SoakPlan(
                parsed.GetValue(engine)!, parsed.GetValue(backend), parsed.GetValue(connections), parsed.GetValue(duration),
                parsed.GetValue(interval), parsed.GetValue(seed) ?? Random.Shared.Next(), parsed.GetValue(threads)),
            Console.Out).RunAsync());
        return command;
    }
}
