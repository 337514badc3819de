using System.Net.Sockets;
using System.Reflection;
using Xunit.Sdk;

namespace SockNotify.Tests.Support;

/// <summary>Dequeues operation completions one at a time, failing the test when one does not come in time.</summary>
internal static class Completions
{
    public const int DeadlineMilliseconds = 5000;

    public static CompletionEntry Next(CompletionPort port, int timeoutMilliseconds = DeadlineMilliseconds)
    {
        CompletionEntry[] entries = new CompletionEntry[1];
        CompletionWaitResult result = port.GetQueuedCompletionStatus(entries, out int count, timeoutMilliseconds);
        Assert.True(result == CompletionWaitResult.Success, $"No completion within {timeoutMilliseconds} ms ({result}).");
        Assert.Equal(1, count);
        return entries[0];
    }

    /// <summary>Takes exactly <paramref name="count"/> completions.</summary>
    public static List<CompletionEntry> Take(CompletionPort port, int count)
    {
        List<CompletionEntry> taken = [];
        CompletionEntry[] entries = new CompletionEntry[64];
        DateTime deadline = DateTime.UtcNow.AddMilliseconds(DeadlineMilliseconds);
        while (taken.Count < count)
        {
            int remaining = (int)Math.Max(0, (deadline - DateTime.UtcNow).TotalMilliseconds);
            CompletionWaitResult result = port.GetQueuedCompletionStatus(entries.AsSpan(0, Math.Min(entries.Length, count - taken.Count)), out int got, remaining);
            Assert.True(result == CompletionWaitResult.Success, $"Got {taken.Count} of {count} completions, then {result}.");
            taken.AddRange(entries.AsSpan(0, got));
        }

        return taken;
    }

    public static void None(CompletionPort port, int milliseconds = 100)
    {
        CompletionEntry[] entries = new CompletionEntry[1];
        CompletionWaitResult result = port.GetQueuedCompletionStatus(entries, out _, milliseconds);
        Assert.True(result == CompletionWaitResult.TimedOut,
            $"Expected no completion, got context {entries[0].Context} ({entries[0].SocketError}, {entries[0].BytesTransferred} bytes).");
    }

    public static void AssertStarted(SocketError started) => Assert.Equal(SocketError.IOPending, started);
}

/// <summary>Runs a theory once per operations backend, as Kestrel's functional tests run once per transport.</summary>
internal sealed class BothBackendsAttribute : DataAttribute
{
    public override IEnumerable<object[]> GetData(MethodInfo testMethod) =>
    [
        [CompletionPortBackend.IoUring],
        [CompletionPortBackend.Epoll],
    ];
}

internal static class Ports
{
    public static CompletionPort Create(CompletionPortBackend backend, int pooledBufferCount = 1024, int pooledBufferSize = 4096) =>
        new(new CompletionPortOptions { Backend = backend, PooledBufferCount = pooledBufferCount, PooledBufferSize = pooledBufferSize });

    /// <summary>Has a pooled receive on <paramref name="pair"/> take a buffer and keeps it lent (the caller returns it).</summary>
    public static CompletionEntry LendABuffer(CompletionPort port, TcpPair pair)
    {
        Completions.AssertStarted(port.ReceivePooled(pair.Server, SocketFlags.None, null));
        pair.Client.Send([1]);
        CompletionEntry lent = Completions.Next(port);
        Assert.Equal(1, lent.PooledData.Length);
        return lent;
    }

    /// <summary>A connected pair whose server side is associated with the port under <paramref name="key"/>.</summary>
    public static TcpPair AssociatedPair(CompletionPort port, object key, AddressFamily family = AddressFamily.InterNetwork)
    {
        TcpPair pair = TcpPair.Create(family);
        port.Associate(pair.Server, key);
        return pair;
    }
}
