namespace SockNotify.Samples;

/// <summary>What a scenario reports: whether it verified its data, and what it moved.</summary>
/// <param name="Name">The scenario's name, as <c>socknotify demo</c> takes it.</param>
/// <param name="Verified">True only if every check of the scenario passed.</param>
/// <param name="Messages">Payloads (or datagrams) the server received and verified.</param>
/// <param name="Elapsed">Wall time of the run.</param>
/// <param name="Detail">One line: what was verified, or what went wrong.</param>
public sealed record ScenarioResult(string Name, bool Verified, long Messages, TimeSpan Elapsed, string Detail);

/// <summary>The seed's scenarios by name, for the CLI and the tests.</summary>
public static class Scenarios
{
    /// <summary>Every scenario, in the order the seed presents them.</summary>
    public static IReadOnlyList<(string Name, string Description, Func<Action<string>, ScenarioResult> Run)> All { get; } =
    [
        ("poll", "Simple poll replacement: one thread, persistent level In|Hangup", PollReplacement.Run),
        ("edge-udp", "Edge-triggered UDP server: register before bind, drain until WouldBlock", EdgeTriggeredUdpServer.Run),
        ("multithreaded", "Multithreaded TCP server: 16 threads, one-shot level, batched re-arm", log => MultithreadedTcpServer.Run(log)),
        ("deregister", "DeregisterAndWait among other registered sockets, nothing dropped", DeregisterScenario.Run),
        ("iocp", "Completion port server: posted accepts, a worker per processor, a lookaside list of contexts", CompletionPortServer.Run),
    ];
}
