namespace SockNotify;

/// <summary>
/// What a <see cref="SocketNotifyRegistration"/> does to a socket's registration (Winsock's <c>SOCK_NOTIFY_OP_*</c>).
/// Exactly one operation per registration item: a combination such as <c>Remove | Enable</c> is rejected with
/// <see cref="SocketNotifyResult.InvalidRegistration"/>.
/// </summary>
public enum SocketNotifyOperation : byte
{
    /// <summary>Nothing is changed; the item succeeds at once.</summary>
    None = 0,

    /// <summary>
    /// Creates the registration, or re-arms and updates the filter and triggers of an existing one. The completion key
    /// is taken only when the registration is created: to change it, remove the registration, wait for
    /// <see cref="SocketNotifyEvents.Remove"/>, and register again.
    /// </summary>
    Enable = 1,

    /// <summary>
    /// Stops new notifications without removing the registration; <see cref="Enable"/> resumes it with the same key.
    /// Notifications already dequeued by another thread before the call may still be handed out.
    /// </summary>
    Disable = 2,

    /// <summary>
    /// Removes the registration and queues exactly one <see cref="SocketNotifyEvents.Remove"/> notification, the last
    /// one for the registration.
    /// </summary>
    Remove = 4,
}
