using System.Net.Sockets;

namespace SockNotify.Internal;

/// <summary>
/// One socket's registration with one port, from Enable (create) until Remove, port disposal or the socket's close.
/// An instance is never reused: a new registration of the same socket, or of another socket that gets the same
/// descriptor number, is a new instance with a new token, so a stale kernel event can never reach it.
/// A socket associated for overlapped operations is an <see cref="Association"/>, the derived kind.
/// The life of a registration and the race for its socket are described in <see cref="Registrar"/>.
/// </summary>
internal class Registration
{
    private int _deliverable;
    private int _removed;

    public Registration(PortCore port, SafeSocketHandle handle, object? completionKey, SlotToken token)
    {
        Port = port;
        Handle = handle;
        CompletionKey = completionKey;
        Token = token;
    }

    public PortCore Port { get; }

    public SafeSocketHandle Handle { get; }

    public object? CompletionKey { get; }

    public SlotToken Token { get; }

    public int Slot => Token.Slot;

    /// <summary>
    /// What a ready event may deliver: the filter plus Err while enabled; None while disabled and forever once removed.
    /// Written under the registration's lock, read without it by every dequeuing thread.
    /// </summary>
    public SocketNotifyEvents Deliverable
    {
        get => (SocketNotifyEvents)Volatile.Read(ref _deliverable);
        set => Volatile.Write(ref _deliverable, (int)value);
    }

    public bool IsRemoved => Volatile.Read(ref _removed) != 0;

    /// <summary>
    /// Ends the registration. Exactly one caller wins, whether it is Remove, the closed-socket sweep or port disposal,
    /// and only the winner frees the slot or queues a Remove notification.
    /// </summary>
    public bool TryMarkRemoved()
    {
        if (Interlocked.Exchange(ref _removed, 1) != 0)
        {
            return false;
        }

        Deliverable = SocketNotifyEvents.None;
        return true;
    }

    /// <summary>
    /// The notification a kernel readiness report makes: what the registration delivers of <paramref name="events"/>,
    /// plus Hangup whatever the filter when the socket is <paramref name="closed"/> in both directions (a permanent
    /// state that a level registration unable to report would wake its waiters with forever). None: nothing to deliver.
    /// </summary>
    public SocketNotifyEvents Filter(SocketNotifyEvents events, bool closed)
    {
        SocketNotifyEvents deliverable = Deliverable;
        SocketNotifyEvents delivered = events & deliverable;
        if (closed && deliverable != SocketNotifyEvents.None)
        {
            delivered |= SocketNotifyEvents.Hangup;
        }

        return delivered;
    }
}
