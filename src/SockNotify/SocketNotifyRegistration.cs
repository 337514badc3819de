using System.Net.Sockets;

namespace SockNotify;

/// <summary>
/// One registration item for <see cref="CompletionPort.ProcessSocketNotifications(Span{SocketNotifyRegistration}, int, Span{CompletionEntry}, out int)"/>,
/// the .NET shape of Winsock's <c>SOCK_NOTIFY_REGISTRATION</c>. Items are mutable so that a batch can be built in
/// place and reused; the port writes each item's outcome to <see cref="RegistrationResult"/>.
/// </summary>
public struct SocketNotifyRegistration
{
    /// <summary>The socket to register. It stays owned by the caller; disposing it deregisters it silently.</summary>
    public Socket? Socket { get; set; }

    /// <summary>
    /// Any object (typically the per-socket context) returned as <see cref="CompletionEntry.CompletionKey"/> with every
    /// notification. Used only when the registration is created.
    /// </summary>
    public object? CompletionKey { get; set; }

    /// <summary>The events requested: a non-empty combination of In, Out and Hangup. Used by Enable only.</summary>
    public SocketNotifyEvents EventFilter { get; set; }

    /// <summary>The operation to apply.</summary>
    public SocketNotifyOperation Operation { get; set; }

    /// <summary>Level or Edge, optionally with OneShot or Persistent. Used by Enable only.</summary>
    public SocketNotifyTrigger TriggerFlags { get; set; }

    /// <summary>The outcome of this item, written by the port when the batch is applied.</summary>
    public SocketNotifyResult RegistrationResult { readonly get; internal set; }
}
