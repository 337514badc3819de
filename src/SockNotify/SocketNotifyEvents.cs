namespace SockNotify;

/// <summary>
/// Socket state events: what a registration asks for (its event filter) and what a notification reports.
/// The values are those of Winsock's <c>SOCK_NOTIFY_REGISTER_EVENT_*</c> and <c>SOCK_NOTIFY_EVENT_*</c>.
/// </summary>
[Flags]
public enum SocketNotifyEvents : uint
{
    /// <summary>No event. Not a valid filter for <see cref="SocketNotifyOperation.Enable"/>.</summary>
    None = 0,

    /// <summary>Data (or a pending connection, for a listener) can be read without blocking.</summary>
    In = 0x01,

    /// <summary>Data can be written without blocking.</summary>
    Out = 0x02,

    /// <summary>
    /// The stream connection was closed by the peer (FIN) or aborted. Besides being requested in the filter, it is
    /// delivered whatever the filter when the socket can neither send nor receive any more, a permanent condition.
    /// </summary>
    Hangup = 0x04,

    /// <summary>The socket is in an error state (for example reset, or a failed connect). Delivered whatever the filter.</summary>
    Err = 0x40,

    /// <summary>
    /// The registration was removed. It is the last notification ever delivered for its registration, so the
    /// completion key's state may be freed once it is received. Never part of a filter.
    /// </summary>
    Remove = 0x80,

    /// <summary>The filter for every requestable event: <see cref="In"/> | <see cref="Out"/> | <see cref="Hangup"/>.</summary>
    All = In | Out | Hangup,
}
