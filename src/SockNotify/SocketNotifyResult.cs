namespace SockNotify;

/// <summary>
/// The outcome of one <see cref="SocketNotifyRegistration"/> item, written back to
/// <see cref="SocketNotifyRegistration.RegistrationResult"/> (Winsock's <c>registrationResult</c>). A failed item
/// never stops the other items of its batch.
/// </summary>
public enum SocketNotifyResult
{
    /// <summary>The operation was applied.</summary>
    Success = 0,

    /// <summary>
    /// The item is malformed: no socket; an operation that is not exactly one of Enable, Disable, Remove (or None);
    /// for Enable, an empty filter, a filter bit other than In, Out, Hangup, neither or both of Level and Edge, both
    /// OneShot and Persistent, or an unknown trigger bit.
    /// </summary>
    InvalidRegistration,

    /// <summary>The socket is disposed (closed). A registration it had was already dropped, without a Remove.</summary>
    SocketClosed,

    /// <summary>Disable or Remove named a socket that has no registration on this port.</summary>
    NotRegistered,

    /// <summary>The socket is registered with another <see cref="CompletionPort"/>; a socket belongs to one port.</summary>
    RegisteredWithAnotherPort,

    /// <summary>The kernel refused for lack of memory or of watch slots (epoll's <c>max_user_watches</c>).</summary>
    InsufficientResources,

    /// <summary>The port was disposed while the batch was being applied; the item was not applied.</summary>
    PortClosed,

    /// <summary>The kernel refused the socket for another reason (for example, a descriptor that cannot be polled).</summary>
    SystemError,
}
