namespace SockNotify;

/// <summary>
/// How and how often a registration fires (Winsock's <c>SOCK_NOTIFY_TRIGGER_*</c>). Exactly one of
/// <see cref="Level"/> and <see cref="Edge"/> is required; at most one of <see cref="OneShot"/> and
/// <see cref="Persistent"/> may be given, and <see cref="Persistent"/> is the default.
/// </summary>
[Flags]
public enum SocketNotifyTrigger : byte
{
    /// <summary>No trigger flags: not valid for <see cref="SocketNotifyOperation.Enable"/>.</summary>
    None = 0,

    /// <summary>After one notification the registration is disabled (not removed) until it is enabled again.</summary>
    OneShot = 0x01,

    /// <summary>The registration stays enabled after a notification (the default).</summary>
    Persistent = 0x02,

    /// <summary>Notifies while a requested condition holds: again on every dequeue until it is consumed.</summary>
    Level = 0x04,

    /// <summary>
    /// Notifies when a requested condition becomes true while enabled. Drain the socket (read until it would block)
    /// before waiting again, or a later edge may not be observed.
    /// </summary>
    Edge = 0x08,
}
