using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using SockNotify.Cli.Soak;

namespace SockNotify.Cli.Tests;

/// <summary>Short soaks of every engine, run as users run them, and the soak's own verification.</summary>
[Collection(nameof(MeasuresTheMachine))]
public partial class SoakTests
{
    [Theory]
    [InlineData("notify", "auto")]
    [InlineData("completion", "epoll")]
    [InlineData("completion", "io-uring")] // Failed before CloseSocket stopped resetting connections another thread was submitting for.
    [InlineData("sockets", "auto")]
    [InlineData("kestrel", "auto")]
    [InlineData("kestrel-socknotify", "auto")]
    public async Task A_short_soak_of_every_engine_verifies_its_bytes_and_exits_0(string engine, string backend) =>
        await AssertShortSoakPassesAsync(engine, backend);

    [Fact]
    public async Task A_soak_client_reports_the_first_wrong_byte_of_an_echo()
    {
        using Socket listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        Task corrupting = Task.Run(async () =>
        {
            using Socket connection = await listener.AcceptAsync();
            byte[] buffer = new byte[100];
            for (int received = 0; received < buffer.Length;)
            {
                received += await connection.ReceiveAsync(buffer.AsMemory(received));
            }

            buffer[^1] ^= 0x01;
            await connection.SendAsync(buffer);
        });
        SoakTally tally = new();
        SoakConnectionPlan plan = new(0, SoakStream.Key(1, 2, 3), [100], SoakEnding.Close, ResetAt: 100, ChunkSeed: 4);

        using SemaphoreSlim awaitingAccept = new(1);
        SoakShared shared = new((IPEndPoint)listener.LocalEndPoint!, tally, awaitingAccept, CancellationToken.None, CancellationToken.None);

        bool ended = await SoakConnection.RunAsync(shared, plan, "client 2 connection 0");

        Assert.False(ended);
        Assert.Matches("^client 2 connection 0 .*: echoed byte 99 is ", tally.Failure);
        Assert.True(tally.BytesVerified < 100);
        Assert.Equal(1, awaitingAccept.CurrentCount); // Its place among the connections waiting to be accepted was given back.
        await corrupting;
    }

    [Fact]
    public void The_stream_is_the_same_byte_by_byte_from_any_offset_and_differs_between_connections()
    {
        ulong key = SoakStream.Key(seed: 1, client: 2, connection: 3);
        byte[] whole = new byte[100];
        SoakStream.Fill(key, 5, whole);
        for (int start = 0; start < 20; start++)
        {
            byte[] part = new byte[start + 17];
            SoakStream.Fill(key, 5 + start, part.AsSpan(0, 17));
            Assert.Equal(whole.AsSpan(start, 17).ToArray(), part.AsSpan(0, 17).ToArray());
            Assert.Equal(whole[start], SoakStream.ByteAt(key, 5 + start));
        }

        byte[] other = new byte[100];
        SoakStream.Fill(SoakStream.Key(1, 2, 4), 5, other);
        Assert.NotEqual(whole, other);
        Assert.Equal(-1, SoakStream.FirstMismatch(key, 5, whole, new byte[100]));
    }

    private static async Task AssertShortSoakPassesAsync(string engine, string backend)
    {
        (int exitCode, string output, string error) = await CommandLineTests.RunAsync(
            "soak", "--engine", engine, "--backend", backend, "--connections", "16", "--duration", "4s", "--interval", "2s", "--seed", "7");

        Assert.True(exitCode == 0, $"{output}\n{error}");
        Match passed = PassedLine().Match(output);
        Assert.True(passed.Success, output);
        Assert.True(double.Parse(passed.Groups["mebibytes"].Value, NumberStyles.Float | NumberStyles.AllowThousands, CultureInfo.InvariantCulture) > 0, output);
        Assert.Contains("idle:", output);
        Assert.Contains("end ", output);
    }

    [GeneratedRegex(@"soak passed: [\d,]+ connections churned .*, (?<mebibytes>[\d,.]+) MiB echoed and verified")]
    private static partial Regex PassedLine();
}
