using CsCheck;

namespace SockNotify.Tests.Model;

/// <summary>
/// One step of a notification sequence, and the generator of sequences. Sockets are named by index (0 to 2): each is
/// the accepted side of a loopback connection whose client side is "the peer". Steps that make no sense at run time
/// (a peer send after the peer reset, a second close) do nothing, so that any sequence, and any part of one that
/// shrinking keeps, is valid.
/// </summary>
internal abstract record NotificationStep
{
    private NotificationStep()
    {
    }

    /// <summary>An Enable item; the runner gives each a new completion key, which only a creating Enable may take.</summary>
    public sealed record Enable(int Socket, SocketNotifyEvents Filter, SocketNotifyTrigger Trigger) : NotificationStep;

    public sealed record Disable(int Socket) : NotificationStep;

    public sealed record Remove(int Socket) : NotificationStep;

    /// <summary><see cref="CompletionPort.DeregisterAndWait"/>: a Remove whose notification the caller takes itself.</summary>
    public sealed record DeregisterAndWait(int Socket) : NotificationStep;

    /// <summary>Closes the socket: <see cref="CompletionPort.CloseSocket"/> or a plain <see cref="System.Net.Sockets.Socket.Dispose()"/>.</summary>
    public sealed record Close(int Socket, bool ThroughPort) : NotificationStep;

    /// <summary>The peer sends <paramref name="Bytes"/> bytes, which the socket leaves unread until a <see cref="Drain"/>.</summary>
    public sealed record PeerSend(int Socket, int Bytes) : NotificationStep;

    /// <summary>The peer shuts down its sending side: a FIN.</summary>
    public sealed record PeerShutdown(int Socket) : NotificationStep;

    /// <summary>The peer closes with a zero linger: a RST.</summary>
    public sealed record PeerReset(int Socket) : NotificationStep;

    /// <summary>The socket reads until it would block.</summary>
    public sealed record Drain(int Socket) : NotificationStep;

    /// <summary>Posts <paramref name="Count"/> packets.</summary>
    public sealed record Post(int Count) : NotificationStep;

    /// <summary>
    /// Dequeues with arrays of <paramref name="Entries"/> entries on <paramref name="Threads"/> threads until everything
    /// the model says must arrive has arrived, checking each entry against what may arrive.
    /// </summary>
    public sealed record Dequeue(int Entries, int Threads) : NotificationStep;

    public const int MaxSockets = 3;

    /// <summary>Sequences of 1 to 20 steps; CsCheck shrinks towards fewer steps, socket 0, Level and small numbers.</summary>
    public static Gen<NotificationStep[]> Sequences { get; } = Step().Array[1, 20];

    private static Gen<NotificationStep> Step()
    {
        Gen<int> socket = Gen.Int[0, MaxSockets - 1];
        Gen<SocketNotifyEvents> filter = Gen.Int[1, 7].Select(bits => (SocketNotifyEvents)bits);
        Gen<SocketNotifyTrigger> trigger = Gen.Select(Gen.Int[0, 1], Gen.Int[0, 2], (kind, lifetime) =>
            (kind == 0 ? SocketNotifyTrigger.Level : SocketNotifyTrigger.Edge) | lifetime switch
            {
                0 => SocketNotifyTrigger.None, // Persistent by default.
                1 => SocketNotifyTrigger.OneShot,
                _ => SocketNotifyTrigger.Persistent,
            });
        Gen<int> entries = Gen.Int[0, 2].Select(size => size switch { 0 => 1, 1 => 3, _ => 16 });
        Gen<int> threads = Gen.Frequency((4, Gen.Const(1)), (1, Gen.Int[2, 3]));
        return Gen.Frequency(
            (6, Gen.Select(socket, filter, trigger, (s, f, t) => (NotificationStep)new Enable(s, f, t))),
            (1, socket.Select(s => (NotificationStep)new Disable(s))),
            (2, socket.Select(s => (NotificationStep)new Remove(s))),
            (1, socket.Select(s => (NotificationStep)new DeregisterAndWait(s))),
            (1, Gen.Select(socket, Gen.Bool, (s, throughPort) => (NotificationStep)new Close(s, throughPort))),
            (3, Gen.Select(socket, Gen.Int[1, 2000], (s, bytes) => (NotificationStep)new PeerSend(s, bytes))),
            (1, socket.Select(s => (NotificationStep)new PeerShutdown(s))),
            (1, socket.Select(s => (NotificationStep)new PeerReset(s))),
            (2, socket.Select(s => (NotificationStep)new Drain(s))),
            (2, Gen.Int[1, 3].Select(count => (NotificationStep)new Post(count))),
            (5, Gen.Select(entries, threads, (e, t) => (NotificationStep)new Dequeue(e, t))));
    }
}
