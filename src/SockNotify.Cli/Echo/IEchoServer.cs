using System.Net;

namespace SockNotify.Cli.Echo;

/// <summary>
/// An echo server engine: every byte a client sends comes back on the same connection, and the server closes its
/// side once the client has closed its sending side and everything was echoed. Engines differ only in the I/O model,
/// so that benchmarks compare like with like.
/// </summary>
internal interface IEchoServer : IAsyncDisposable
{
    /// <summary>The address the server listens on (with the real port when 0 was asked for).</summary>
    IPEndPoint LocalEndPoint { get; }

    /// <summary>The backend of the engine's <see cref="CompletionPort"/>; null for the engines that have none.</summary>
    CompletionPortBackend? Backend => null;

    /// <summary>Stops accepting, closes every connection and releases everything. Returns a one-line summary.</summary>
    Task<string> StopAsync();
}

/// <summary>The engines <c>socknotify echo --engine</c> offers.</summary>
internal static class EchoEngines
{
    public const string Notify = "notify";
    public const string Completion = "completion";
    public const string Sockets = "sockets";
    public const string Kestrel = "kestrel";

    /// <summary>The <see cref="Kestrel"/> engine on the SockNotify transport (<c>UseSockNotify()</c>).</summary>
    public const string KestrelSockNotify = "kestrel-socknotify";

    public static readonly string[] Names = [Notify, Completion, Sockets, Kestrel, KestrelSockNotify];

    /// <summary>The engines built on a <see cref="CompletionPort"/>, whose port backend can be chosen.</summary>
    public static readonly string[] OnCompletionPort = [Notify, Completion, KestrelSockNotify];

    /// <summary>
    /// Starts an engine listening on <paramref name="endPoint"/>; throws when the address cannot be bound, or when
    /// <paramref name="backend"/> (used by the engines <see cref="OnCompletionPort"/> only) is not available.
    /// </summary>
    public static async Task<IEchoServer> StartAsync(
        string engine, IPEndPoint endPoint, int threads, CompletionPortBackend backend = CompletionPortBackend.Automatic) => engine switch
    {
        Notify => NotifyEchoServer.Start(endPoint, threads, backend),
        Completion => CompletionEchoServer.Start(endPoint, threads, backend),
        Sockets => SocketsEchoServer.Start(endPoint),
        Kestrel => await KestrelEchoServer.StartAsync(endPoint).ConfigureAwait(false),
        KestrelSockNotify => await KestrelEchoServer.StartAsync(endPoint, sockNotifyBackend: backend).ConfigureAwait(false),
        _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, $"Unknown engine; one of {string.Join(", ", Names)}."),
    };
}
