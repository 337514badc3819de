using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

/// <summary>
/// A stream send completes once every byte is in the kernel; one that stops after part went (cancelled, closed, the
/// peer gone) reports why, with the count of what went, the same on both engines. The sockets' buffers are fixed at
/// 64 KiB (no autotuning), so a 1 MiB send goes in part and waits.
/// </summary>
public sealed class PartialSendTests
{
    private static readonly byte[] s_data = new byte[1024 * 1024];

    [Theory]
    [BothBackends]
    public void A_send_cancelled_after_part_went_completes_aborted_with_that_count(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = StartedBigSend(port);

        Assert.True(port.CancelIo(pair.Server, "big"));

        AssertStoppedShort(Expect.Completion(port), SocketError.OperationAborted);
    }

    [Theory]
    [BothBackends]
    public void A_send_whose_socket_is_closed_after_part_went_completes_aborted_with_that_count(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = StartedBigSend(port);

        port.CloseSocket(pair.Server);

        AssertStoppedShort(Expect.Completion(port), SocketError.OperationAborted);
    }

    [Theory]
    [BothBackends]
    public void A_send_whose_peer_resets_after_part_went_completes_with_the_error_and_that_count(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = StartedBigSend(port);

        pair.Client.LingerState = new LingerOption(true, 0);
        pair.Client.Close(); // RST

        CompletionEntry entry = Expect.Completion(port);
        Assert.True(entry.SocketError is SocketError.ConnectionReset or SocketError.Shutdown, $"{entry.SocketError}");
        Assert.InRange(entry.BytesTransferred, 1u, (uint)s_data.Length - 1);
    }

    /// <summary>A pair whose server has a 1 MiB send in progress, part of it in the kernel and the rest waiting for room.</summary>
    internal static TcpPair StartedBigSend(CompletionPort port)
    {
        TcpPair pair = Ports.AssociatedPair(port, "pair");
        pair.Server.SendBufferSize = 64 * 1024;
        pair.Client.ReceiveBufferSize = 64 * 1024;
        Expect.Started(port.Send(pair.Server, s_data, SocketFlags.None, "big"));
        Expect.Nothing(port, 100); // Submitted by this thread, which lives on; part goes in, then the send waits.
        return pair;
    }

    private static void AssertStoppedShort(CompletionEntry entry, SocketError error)
    {
        Assert.Equal(("big", error), (entry.Context, entry.SocketError));
        Assert.InRange(entry.BytesTransferred, 1u, (uint)s_data.Length - 1);
    }
}
