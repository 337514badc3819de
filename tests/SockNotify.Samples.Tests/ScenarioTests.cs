using System.Collections.Concurrent;
using SockNotify.Samples;

namespace SockNotify.Samples.Tests;

public class ScenarioTests
{
    public static TheoryData<string> ScenarioNames => new(Scenarios.All.Select(s => s.Name));

    [Theory]
    [MemberData(nameof(ScenarioNames))]
    public void Every_scenario_verifies_its_own_data(string name)
    {
        ConcurrentQueue<string> transcript = new();
        ScenarioResult result = Scenarios.All.Single(s => s.Name == name).Run(transcript.Enqueue);
        Assert.True(result.Verified, $"{name}: {result.Detail}");
        Assert.Equal(name, result.Name);
        Assert.True(result.Messages > 0);
        Assert.NotEmpty(transcript);
    }

    [Fact]
    public void The_multithreaded_server_receives_every_payload_of_every_client_exactly_once()
    {
        ScenarioResult result = MultithreadedTcpServer.Run(_ => { });
        Assert.True(result.Verified, result.Detail);
        Assert.Equal(MultithreadedTcpServer.ClientThreadCount * Common.ClientLoopCount, result.Messages);
    }

    [Fact]
    public void The_multithreaded_server_also_verifies_with_one_thread_and_with_more_threads_than_clients()
    {
        Assert.True(MultithreadedTcpServer.Run(_ => { }, serverThreads: 1, clientThreads: 20).Verified);
        Assert.True(MultithreadedTcpServer.Run(_ => { }, serverThreads: 8, clientThreads: 3).Verified);
    }

    [Theory]
    [InlineData(CompletionPortBackend.IoUring)]
    [InlineData(CompletionPortBackend.Epoll)]
    public void The_completion_port_server_echoes_every_payload_once_on_both_backends(CompletionPortBackend backend)
    {
        ScenarioResult result = CompletionPortServer.Run(_ => { }, workerThreads: 4, clients: 32, backend);
        Assert.True(result.Verified, result.Detail);
        Assert.Equal(32 * Common.ClientLoopCount, result.Messages);
        Assert.True(CompletionPortServer.Run(_ => { }, workerThreads: 1, clients: 8, backend).Verified);
    }

    [Fact]
    public void The_payload_check_rejects_a_missing_a_duplicated_and_a_foreign_payload()
    {
        uint[] complete = [Common.Payload(0, 0), Common.Payload(0, 1), Common.Payload(1, 0), Common.Payload(1, 1)];
        Assert.Null(Common.FindPayloadMismatch(complete, clients: 2, transmitCount: 2));
        Assert.NotNull(Common.FindPayloadMismatch(complete[1..], clients: 2, transmitCount: 2));
        Assert.NotNull(Common.FindPayloadMismatch([.. complete, complete[0]], clients: 2, transmitCount: 2));
        Assert.NotNull(Common.FindPayloadMismatch([.. complete, Common.Payload(5, 0)], clients: 2, transmitCount: 2));
    }

    [Fact]
    public void A_stream_that_ends_mid_payload_is_corrupt()
    {
        Assert.Throws<InvalidDataException>(() => Common.Payloads(new byte[Common.PayloadSize * 3 + 1]).ToList());
        Assert.Equal(3, Common.Payloads(new byte[Common.PayloadSize * 3]).Count());
    }
}
