using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

/// <summary>Races found in review, each kept from coming back.</summary>
public class RegressionTests
{
    [Theory, BothBackends]
    public void A_batch_applied_while_the_port_is_disposed_leaves_no_registration_behind(CompletionPortBackend backend)
    {
        TcpPair[] pairs = Enumerable.Range(0, 200).Select(_ => TcpPair.Create()).ToArray();
        try
        {
            for (int iteration = 0; iteration < 10; iteration++)
            {
                CompletionPort port = Ports.Create(backend);
                SocketNotifyRegistration[] items = pairs.Select(p => Items.Enable(p.Server, p, SocketNotifyEvents.In, SocketNotifyTrigger.Level)).ToArray();
                Thread applier = new(() => port.ProcessSocketNotifications(items));
                applier.Start();
                SpinWait.SpinUntil(() => port.RegistrationCount > 20 || !applier.IsAlive);
                port.Dispose();
                applier.Join();

                Assert.Equal(0, port.RegistrationCount);
                Assert.All(items, i => Assert.True(i.RegistrationResult is SocketNotifyResult.Success or SocketNotifyResult.PortClosed, $"{i.RegistrationResult}"));
                // Every socket is free again: a new port may take each one.
                using CompletionPort next = Ports.Create(backend);
                Assert.All(pairs, p => Assert.Equal(SocketNotifyResult.Success, next.Apply(Items.Enable(p.Server, p, SocketNotifyEvents.In, SocketNotifyTrigger.Level))));
            }
        }
        finally
        {
            Array.ForEach(pairs, p => p.Dispose());
        }
    }

    [Theory, BothBackends]
    public void Two_ports_racing_to_take_over_sockets_from_a_disposed_port_never_both_win(CompletionPortBackend backend)
    {
        TcpPair[] pairs = Enumerable.Range(0, 200).Select(_ => TcpPair.Create()).ToArray();
        try
        {
            for (int iteration = 0; iteration < 20; iteration++)
            {
                CompletionPort old = Ports.Create(backend);
                old.ProcessSocketNotifications(pairs.Select(p => Items.Enable(p.Server, p, SocketNotifyEvents.In, SocketNotifyTrigger.Level)).ToArray());
                using CompletionPort first = Ports.Create(backend);
                using CompletionPort second = Ports.Create(backend);
                SocketNotifyRegistration[] firstItems = pairs.Select(p => Items.Enable(p.Server, p, SocketNotifyEvents.In, SocketNotifyTrigger.Level)).ToArray();
                SocketNotifyRegistration[] secondItems = pairs.Select(p => Items.Enable(p.Server, p, SocketNotifyEvents.In, SocketNotifyTrigger.Level)).ToArray();
                using Barrier go = new(3);
                Thread[] racers =
                [
                    new(() => { go.SignalAndWait(); first.ProcessSocketNotifications(firstItems); }),
                    new(() => { go.SignalAndWait(); second.ProcessSocketNotifications(secondItems); }),
                ];
                Array.ForEach(racers, r => r.Start());
                go.SignalAndWait();
                old.Dispose();
                Array.ForEach(racers, r => r.Join());

                for (int i = 0; i < pairs.Length; i++)
                {
                    Assert.False(
                        firstItems[i].RegistrationResult == SocketNotifyResult.Success && secondItems[i].RegistrationResult == SocketNotifyResult.Success,
                        $"socket {i} was registered with both ports");
                }
            }
        }
        finally
        {
            Array.ForEach(pairs, p => p.Dispose());
        }
    }

    [Theory, BothBackends]
    public void Concurrent_Dispose_calls_release_the_port_once_and_wake_its_waiter(CompletionPortBackend backend)
    {
        for (int iteration = 0; iteration < 200; iteration++)
        {
            CompletionPort port = Ports.Create(backend);
            CompletionWaitResult result = CompletionWaitResult.Success;
            using ManualResetEventSlim waiting = new();
            Thread waiter = new(() =>
            {
                waiting.Set();
                try
                {
                    result = port.GetQueuedCompletionStatus(new CompletionEntry[1], out _, Expect.DeadlineMilliseconds);
                }
                catch (ObjectDisposedException)
                {
                    result = CompletionWaitResult.PortClosed; // The call began after Dispose.
                }
            });
            waiter.Start();
            waiting.Wait();
            using Barrier go = new(2);
            Thread other = new(() => { go.SignalAndWait(); port.Dispose(); });
            other.Start();
            go.SignalAndWait();
            port.Dispose();
            other.Join();
            waiter.Join();
            Assert.Equal(CompletionWaitResult.PortClosed, result);
        }
    }
}
