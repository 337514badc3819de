using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

[Collection(nameof(DescriptorSensitive))]
public class LeakTests
{
    [Theory, BothBackends]
    public void Creating_and_disposing_2000_ports_leaves_the_descriptor_count_unchanged(CompletionPortBackend backend)
    {
        WarmUp(backend);
        Descriptors before = Descriptors.Snapshot();
        for (int i = 0; i < 2000; i++)
        {
            using CompletionPort port = Ports.Create(backend);
            port.PostQueuedCompletionStatus(null, 0, null);
        }

        before.AssertUnchanged();
    }

    [Theory, BothBackends]
    public void Churning_10000_registrations_leaves_descriptors_and_registrations_unchanged(CompletionPortBackend backend)
    {
        WarmUp(backend);
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Descriptors before = Descriptors.Snapshot();
        CompletionEntry[] entries = new CompletionEntry[4];
        for (int i = 0; i < 10_000; i++)
        {
            port.Register(Items.Enable(pair.Server, pair, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
            port.Register(Items.Disable(pair.Server));
            port.Register(Items.Remove(pair.Server));
            Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, 1000));
            Assert.Equal(SocketNotifyEvents.Remove, entries[count - 1].Events);
        }

        Assert.Equal(0, port.RegistrationCount);
        before.AssertUnchanged();
    }

    [Theory, BothBackends]
    public void A_port_disposed_with_waiters_and_registrations_releases_its_descriptors(CompletionPortBackend backend)
    {
        WarmUp(backend);
        using TcpPair pair = TcpPair.Create();
        Descriptors before = Descriptors.Snapshot();
        for (int i = 0; i < 50; i++)
        {
            CompletionPort port = Ports.Create(backend);
            port.Register(Items.Enable(pair.Server, null, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
            CompletionWaitResult result = default;
            using ManualResetEventSlim started = new();
            Thread waiter = new(() =>
            {
                started.Set();
                try
                {
                    result = port.GetQueuedCompletionStatus(new CompletionEntry[1], out _, Timeout.Infinite);
                }
                catch (ObjectDisposedException)
                {
                    result = CompletionWaitResult.PortClosed; // Started its call after Dispose: as closed as it gets.
                }
            });
            waiter.Start();
            started.Wait();
            Thread.Sleep(1); // Usually inside the backend's wait by now; either way it must return PortClosed.
            port.Dispose();
            waiter.Join();
            Assert.Equal(CompletionWaitResult.PortClosed, result);
        }

        before.AssertUnchanged();
    }

    private static void WarmUp(CompletionPortBackend backend)
    {
        // The runtime opens descriptors lazily on first use of sockets and threads; open them before counting.
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
    }
}
