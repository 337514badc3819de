using System.Reflection;
using Xunit.Sdk;

namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>The transports one functional suite runs against: Kestrel's own as the reference, and SockNotify's two engines.</summary>
public enum Transport
{
    Sockets,
    SockNotifyIoUring,
    SockNotifyEpoll,
}

/// <summary>
/// Runs a theory once per transport, as Kestrel's <c>TransportSelector</c> runs its functional tests: the transport
/// comes first, then any further arguments given here.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
internal sealed class AllTransportsAttribute(params object[] arguments) : DataAttribute
{
    public static readonly Transport[] Transports = [Transport.Sockets, Transport.SockNotifyIoUring, Transport.SockNotifyEpoll];

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => Transports.Select(transport => (object[])[transport, .. arguments]);
}

/// <summary>Runs a theory once per SockNotify engine.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
internal sealed class SockNotifyTransportsAttribute(params object[] arguments) : DataAttribute
{
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) =>
        new[] { Transport.SockNotifyIoUring, Transport.SockNotifyEpoll }.Select(transport => (object[])[transport, .. arguments]);
}

internal static class TransportExtensions
{
    public static bool IsSockNotify(this Transport transport) => transport != Transport.Sockets;

    public static CompletionPortBackend Backend(this Transport transport) =>
        transport == Transport.SockNotifyEpoll ? CompletionPortBackend.Epoll : CompletionPortBackend.IoUring;
}
