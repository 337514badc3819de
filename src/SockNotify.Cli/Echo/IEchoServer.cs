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

    public static readonly string[] Names = [Notify, Completion, Sockets, Kestrel];

    /// <summary>Starts an engine listening on <paramref name="endPoint"/>; throws when the address cannot be bound.</summary>
    public static async Task<IEchoServer> StartAsync(string engine, IPEndPoint endPoint, int threads) => engine switch
    {
        Notify => NotifyEchoServer.Start(endPoint, threads),
        Completion => CompletionEchoServer.Start(endPoint, threads),
        Sockets => SocketsEchoServer.Start(endPoint),
        Kestrel => await KestrelEchoServer.StartAsync(endPoint).ConfigureAwait(false),
        _ => throw new ArgumentOutOfRangeException(nameof(engine), engine, $"Unknown engine; one of {string.Join(", ", Names)}."),
    };
}
