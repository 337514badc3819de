using System.Reflection;
using Xunit.Sdk;
using Xunit.v3;

namespace SockNotify.Tests.Support;

/// <summary>
/// Windows' counterpart of the Linux suite's attribute of the same name (xunit v3 asks data attributes for rows
/// differently): the shared tests name the backend they run on first, and Windows has one, Iocp.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
internal sealed class BothBackendsAttribute(params object[] arguments) : DataAttribute
{
    public static readonly CompletionPortBackend[] Backends = [CompletionPortBackend.Iocp];

    public override ValueTask<IReadOnlyCollection<ITheoryDataRow>> GetData(MethodInfo testMethod, DisposalTracker disposalTracker) =>
        new([.. Backends.Select(backend => new TheoryDataRow([backend, .. arguments]))]);

    public override bool SupportsDiscoveryEnumeration() => true;
}
