using System.Net.Sockets;

namespace SockNotify.Tests.Support;

/// <summary>Registration items in one line each.</summary>
internal static class Items
{
    public static SocketNotifyRegistration Enable(Socket socket, object? key, SocketNotifyEvents filter, SocketNotifyTrigger trigger) =>
        new() { Socket = socket, CompletionKey = key, EventFilter = filter, Operation = SocketNotifyOperation.Enable, TriggerFlags = trigger };

    public static SocketNotifyRegistration Disable(Socket socket) =>
        new() { Socket = socket, Operation = SocketNotifyOperation.Disable };

    public static SocketNotifyRegistration Remove(Socket socket) =>
        new() { Socket = socket, Operation = SocketNotifyOperation.Remove };

    /// <summary>Applies one item and returns its result.</summary>
    public static SocketNotifyResult Apply(this CompletionPort port, SocketNotifyRegistration item)
    {
        port.ProcessSocketNotifications(ref item);
        return item.RegistrationResult;
    }

    /// <summary>Applies one item and asserts that it succeeded.</summary>
    public static void Register(this CompletionPort port, SocketNotifyRegistration item) =>
        Assert.Equal(SocketNotifyResult.Success, port.Apply(item));
}
