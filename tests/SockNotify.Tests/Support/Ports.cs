using System.Net.Sockets;

namespace SockNotify.Tests.Support;

/// <summary>Ports on a chosen backend, and the situations on them that several tests start from.</summary>
internal static class Ports
{
    public static CompletionPort Create(CompletionPortBackend backend, int pooledBufferCount = 1024, int pooledBufferSize = 4096) =>
        new(new CompletionPortOptions { Backend = backend, PooledBufferCount = pooledBufferCount, PooledBufferSize = pooledBufferSize });

    /// <summary>Has a pooled receive on <paramref name="pair"/> take a buffer and keeps it lent (the caller returns it).</summary>
    public static CompletionEntry LendABuffer(CompletionPort port, TcpPair pair)
    {
        Expect.Started(port.ReceivePooled(pair.Server, SocketFlags.None, null));
        pair.Client.Send([1]);
        CompletionEntry lent = Expect.Completion(port);
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
