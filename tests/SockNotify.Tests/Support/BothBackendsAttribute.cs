using System.Reflection;
using Xunit.Sdk;

namespace SockNotify.Tests.Support;

/// <summary>
/// Runs a theory once per backend, as Kestrel's functional tests run once per transport: the backend comes first,
/// then any further arguments given here (one attribute per row, like <see cref="InlineDataAttribute"/>). The backend
/// performs overlapped operations and every dequeue goes through its wait (io_uring's, which also polls epoll, or
/// epoll_wait itself), so operation tests and notification tests that dequeue both run on each; the test creates its
/// port with <see cref="Ports.Create"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
internal sealed class BothBackendsAttribute(params object[] arguments) : DataAttribute
{
    public static readonly CompletionPortBackend[] Backends = [CompletionPortBackend.IoUring, CompletionPortBackend.Epoll];

    public override IEnumerable<object[]> GetData(MethodInfo testMethod) => Backends.Select(backend => (object[])[backend, .. arguments]);
}
