using System.Net.Sockets;

namespace SockNotify.Backends;

/// <summary>
/// What every OS backend provides to <see cref="CompletionPort"/>, and nothing more. The port owns the registration
/// table, validation, the posted-packet queue and the REMOVE guarantee; a backend only speaks to the kernel.
/// <list type="bullet">
/// <item>Tokens: the port hands every kernel registration a 64-bit token (slot and generation) and gets it back with
/// each ready event. A backend never interprets tokens and never reports a socket by descriptor.</item>
/// <item>Triggers: a backend implements Level/Edge and OneShot/Persistent natively, so that a one-shot registration
/// fires for exactly one waiter even when many threads wait.</item>
/// <item>Events: <see cref="Wait"/> reports In, Out, Hangup (peer closed its side) and Err, plus
/// <see cref="ReadyEvent.Closed"/> when the socket can neither send nor receive. It may report more than was asked for
/// and may report spuriously; the port filters.</item>
/// <item>Disable: after <see cref="Disable"/> the kernel reports at most one more event (an error or hang-up) for the
/// token; the port drops it.</item>
/// <item>Wake: <see cref="Wake"/> makes one current or future <see cref="Wait"/> return, from any thread.</item>
/// <item>Threads: every method may be called from many threads at once, but calls about one socket are serialized
/// by the port. The port keeps the backend alive until no call is inside it.</item>
/// </list>
/// </summary>
internal interface INotificationBackend : IDisposable
{
    /// <summary>Creates the kernel registration. <paramref name="filter"/> is non-empty and valid.</summary>
    SocketNotifyResult Add(SafeSocketHandle socket, ulong token, SocketNotifyEvents filter, SocketNotifyTrigger trigger);

    /// <summary>Re-arms an existing kernel registration with a new filter and triggers.</summary>
    SocketNotifyResult Modify(SafeSocketHandle socket, ulong token, SocketNotifyEvents filter, SocketNotifyTrigger trigger);

    /// <summary>Stops reporting the socket without deleting its kernel registration.</summary>
    SocketNotifyResult Disable(SafeSocketHandle socket, ulong token);

    /// <summary>Deletes the kernel registration: no event for it is reported by a wait that starts afterwards.</summary>
    SocketNotifyResult Delete(SafeSocketHandle socket);

    /// <summary>
    /// Waits up to <paramref name="timeoutMilliseconds"/> (-1: forever, 0: poll) for ready events and returns how many
    /// were written. Returns 0 when interrupted or woken, so the caller re-checks its own deadline and state.
    /// </summary>
    int Wait(Span<ReadyEvent> events, int timeoutMilliseconds);

    /// <summary>Makes one waiter return (or the next wait, if none is waiting).</summary>
    void Wake();
}

/// <summary>A kernel readiness report: the registration's token and what is ready.</summary>
internal readonly record struct ReadyEvent(ulong Token, SocketNotifyEvents Events)
{
    /// <summary>
    /// Private bit (never public): the socket is closed in both directions, or a stream socket is not connected.
    /// The port turns it into <see cref="SocketNotifyEvents.Hangup"/> whatever the filter, because it is permanent
    /// and a level registration that could not report it would wake its waiters forever.
    /// </summary>
    public const SocketNotifyEvents Closed = (SocketNotifyEvents)0x8000;
}
