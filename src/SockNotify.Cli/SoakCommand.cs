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
            $"The CompletionPort backend of the notify and completion engines: {string.Join(", ", CommandOptions.BackendNames)} "
            + "(operations run on it; notifications use epoll either way). Defaults to auto.");
        Option<int> connections = CommandOptions.Positive("--connections",
            "Client connections churning at once (each also open on the server: two descriptors in this process). Lowered, with a note, "
            + "to what the open-files limit holds. Defaults to 9000.", 9000, max: MaxConnections);
        Option<TimeSpan> duration = CommandOptions.Duration("--duration", "How long to churn. Defaults to 10m.", TimeSpan.FromMinutes(10));
        Option<TimeSpan> interval = CommandOptions.Duration("--interval", "Time between lines of figures. Defaults to 10s.", TimeSpan.FromSeconds(10));
        Option<int?> seed = new("--seed") { Description = "Seed of the clients' random choices. Defaults to a random one, printed." };
        Option<int> threads = CommandOptions.Positive("--threads",
            "Server threads of the notify and completion engines. Defaults to the processor count.", Environment.ProcessorCount, max: MaxThreads);

        Command command = new("soak",
            "Churn connections against an in-process echo server (connect, echo 1 B to 64 KiB in random chunks, then half-close, close or "
            + "reset, reconnect), verify every byte, print the figures every interval, and fail (exit 1) on a wrong byte, an error the "
            + "client did not cause, a stall, or a figure out of bounds after the warm-up (20 % of the duration, at least 10 s). "
            + "With N connections: descriptors <= at start + 2N + max(64, N/8); SockNotify registrations, operations in flight and "
            + "pooled buffers lent <= N + max(64, N/8); RSS <= 1.5 x after warm-up + 64 MiB; managed heap (after a full GC) <= 1.5 x after "
            + "warm-up + 16 MiB; connections keep ending. After the server stops, SockNotify must hold nothing and the descriptors must "
            + "be back to their count before it started (+16).")
        {
            engine, backend, connections, duration, interval, seed, threads,
        };
        command.Validators.Add(result =>
        {
            string chosen = result.GetValue(engine)!;
            if (result.GetValue(backend) != CompletionPortBackend.Automatic && !EchoEngines.OnCompletionPort.Contains(chosen))
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
