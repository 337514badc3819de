using System.Diagnostics;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Port;

public class TimeoutTests
{
    [Theory, BothBackends]
    public void A_zero_timeout_returns_TimedOut_at_once_when_nothing_is_queued(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Stopwatch watch = Stopwatch.StartNew();
        Assert.Equal(CompletionWaitResult.TimedOut, port.GetQueuedCompletionStatus(new CompletionEntry[4], out int count, 0));
        Assert.Equal(0, count);
        Assert.True(watch.ElapsedMilliseconds < 1000, $"took {watch.ElapsedMilliseconds} ms");
    }

    [Theory]
    [BothBackends(1)]
    [BothBackends(15)]
    [BothBackends(120)]
    public void A_finite_timeout_never_returns_early(CompletionPortBackend backend, int milliseconds)
    {
        using CompletionPort port = Ports.Create(backend);
        for (int i = 0; i < 5; i++)
        {
            Stopwatch watch = Stopwatch.StartNew();
            Assert.Equal(CompletionWaitResult.TimedOut, port.GetQueuedCompletionStatus(new CompletionEntry[4], out _, milliseconds));
            Assert.True(watch.Elapsed.TotalMilliseconds >= milliseconds, $"returned after {watch.Elapsed.TotalMilliseconds} ms");
        }
    }

    [Theory, BothBackends]
    public void A_finite_timeout_is_not_cut_short_by_wakes_that_bring_nothing(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        // A post that another thread takes at once wakes this waiter for nothing; it must keep waiting.
        Thread thief = new(() =>
        {
            CompletionEntry[] stolen = new CompletionEntry[1];
            for (int i = 0; i < 20; i++)
            {
                port.PostQueuedCompletionStatus(null, 0, null);
                port.GetQueuedCompletionStatus(stolen, out _, 1000);
                Thread.Sleep(5);
            }
        });
        Stopwatch watch = Stopwatch.StartNew();
        thief.Start();
        CompletionWaitResult result;
        int received = 0;
        CompletionEntry[] entries = new CompletionEntry[1];
        while ((result = port.GetQueuedCompletionStatus(entries, out int count, 300)) == CompletionWaitResult.Success)
        {
            received += count;
            watch.Restart();
        }

        Assert.Equal(CompletionWaitResult.TimedOut, result);
        Assert.True(watch.Elapsed.TotalMilliseconds >= 300, $"returned after {watch.Elapsed.TotalMilliseconds} ms");
        thief.Join();
    }

    [Theory, BothBackends]
    public void An_infinite_timeout_waits_until_something_arrives(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Key key = new("late");
        Timer post = new(_ => port.PostQueuedCompletionStatus(key, 7, null), null, 200, Timeout.Infinite);
        using (post)
        {
            CompletionEntry[] entries = new CompletionEntry[1];
            Stopwatch watch = Stopwatch.StartNew();
            Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, Timeout.Infinite));
            Assert.True(watch.ElapsedMilliseconds >= 150);
            Assert.Equal(1, count);
            Assert.Same(key, entries[0].CompletionKey);
        }
    }

    [Theory, BothBackends]
    public void Registrations_are_applied_even_when_the_dequeue_then_times_out(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        SocketNotifyRegistration[] batch = [Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level)];
        Assert.Equal(CompletionWaitResult.TimedOut, port.ProcessSocketNotifications(batch, 20, new CompletionEntry[4], out int count));
        Assert.Equal(0, count);
        Assert.Equal(SocketNotifyResult.Success, batch[0].RegistrationResult);
        pair.Client.Send([1]);
        Expect.Events(port, (key, SocketNotifyEvents.In));
    }

    [Theory, BothBackends]
    public void TimeSpan_timeouts_mean_the_same_as_milliseconds_and_reject_negative_values(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        CompletionEntry[] entries = new CompletionEntry[1];
        Stopwatch watch = Stopwatch.StartNew();
        Assert.Equal(CompletionWaitResult.TimedOut, port.GetQueuedCompletionStatus(entries, out _, TimeSpan.FromMilliseconds(30)));
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(30));
        Assert.Equal(CompletionWaitResult.TimedOut, port.ProcessSocketNotifications([], TimeSpan.Zero, entries, out _));

        port.PostQueuedCompletionStatus(null, 1, null);
        Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, Timeout.InfiniteTimeSpan));
        Assert.Equal(1, count);
        Assert.Throws<ArgumentOutOfRangeException>(() => port.GetQueuedCompletionStatus(entries, out _, TimeSpan.FromMilliseconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => port.GetQueuedCompletionStatus(entries, out _, TimeSpan.FromDays(30)));
    }

    [Theory, BothBackends]
    public void No_entries_asked_for_means_no_wait(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Stopwatch watch = Stopwatch.StartNew();
        Assert.Equal(CompletionWaitResult.Success, port.ProcessSocketNotifications([], Timeout.Infinite, [], out int count));
        Assert.Equal(0, count);
        Assert.True(watch.ElapsedMilliseconds < 1000);
    }
}
