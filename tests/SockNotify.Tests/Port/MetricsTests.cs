using System.Diagnostics.Metrics;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Port;

/// <summary>
/// The meter's figures are process-wide sums over live ports, so these tests run alone and compare the figures before
/// and after what they do.
/// </summary>
[Collection(nameof(DescriptorSensitive))]
public sealed class MetricsTests
{
    [Theory]
    [BothBackends]
    public void Figures_count_ports_associations_operations_in_flight_and_lent_buffers(CompletionPortBackend backend)
    {
        // A port an earlier test dropped undisposed must not be collected between the readings.
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        Dictionary<string, long> before = Read();
        using (CompletionPort port = Ports.Create(backend))
        using (TcpPair first = Ports.AssociatedPair(port, "first"))
        using (TcpPair second = Ports.AssociatedPair(port, "second"))
        {
            Expect.Started(port.Receive(first.Server, new byte[16], SocketFlags.None, "waiting"));
            CompletionEntry lent = Ports.LendABuffer(port, second);

            Dictionary<string, long> during = Read();
            Assert.Equal(1, during["socknotify.port.active"] - before["socknotify.port.active"]);
            Assert.Equal(2, during["socknotify.registration.active"] - before["socknotify.registration.active"]);
            Assert.Equal(1, during["socknotify.operation.active"] - before["socknotify.operation.active"]);
            Assert.Equal(1, during["socknotify.pool.buffer.lent"] - before["socknotify.pool.buffer.lent"]);
            port.ReturnBuffer(lent);
        }

        Dictionary<string, long> after = Read();
        Assert.All(after.Where(figure => s_figuresOfNow.Contains(figure.Key)), figure => Assert.Equal(before[figure.Key], figure.Value));
    }

    [Theory]
    [BothBackends]
    public void Delivered_counts_move_by_what_dequeues_deliver_by_kind(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair notified = TcpPair.Create();
        using TcpPair operated = Ports.AssociatedPair(port, "operated");
        Dictionary<string, long> before = Read();

        port.PostQueuedCompletionStatus("post", 1, null);
        port.PostQueuedCompletionStatus("post", 2, null);
        port.PostQueuedCompletionStatus("post", 3, null);
        port.Register(Items.Enable(notified.Server, "notified", SocketNotifyEvents.Out, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot));
        Expect.Started(port.Receive(operated.Server, new byte[4], SocketFlags.None, "receive"));
        operated.Client.Send([1]);
        List<CompletionEntry> delivered = [];
        while (delivered.Count < 5)
        {
            delivered.Add(Expect.Completion(port)); // One entry per dequeue call, as the seed's loop takes them.
        }

        Expect.Nothing(port, 20);
        Dictionary<string, long> after = Read();
        Assert.Equal(3, after["socknotify.post.delivered"] - before["socknotify.post.delivered"]);
        Assert.Equal(1, after["socknotify.notification.delivered"] - before["socknotify.notification.delivered"]);
        Assert.Equal(1, after["socknotify.completion.delivered"] - before["socknotify.completion.delivered"]);

        // The Remove notification of a registration counts as a notification.
        port.Register(Items.Remove(notified.Server));
        Expect.Events(port, ("notified", SocketNotifyEvents.Remove));
        Assert.Equal(2, Read()["socknotify.notification.delivered"] - before["socknotify.notification.delivered"]);
    }

    [Theory]
    [BothBackends]
    public void A_batch_dequeue_counts_every_entry_it_delivers(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Dictionary<string, long> before = Read();
        for (int i = 0; i < 10; i++)
        {
            port.PostQueuedCompletionStatus("post", (uint)i, null);
        }

        CompletionEntry[] entries = new CompletionEntry[16];
        Assert.Equal(CompletionWaitResult.Success, port.GetQueuedCompletionStatus(entries, out int count, Expect.DeadlineMilliseconds));
        Assert.Equal(10, count);
        Assert.Equal(10, Read()["socknotify.post.delivered"] - before["socknotify.post.delivered"]);
    }

    [Theory]
    [BothBackends]
    public void The_queue_length_counts_entries_waiting_for_a_dequeue(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        long before = Read()["socknotify.queue.length"];
        for (int i = 0; i < 5; i++)
        {
            port.PostQueuedCompletionStatus("post", (uint)i, null);
        }

        Assert.Equal(5, Read()["socknotify.queue.length"] - before);
        Expect.Completions(port, 2);
        Assert.Equal(3, Read()["socknotify.queue.length"] - before);
        Expect.Completions(port, 3);
        Assert.Equal(before, Read()["socknotify.queue.length"]);
    }

    [Fact]
    public void Counters_keep_what_a_disposed_port_delivered()
    {
        long before = Read()["socknotify.post.delivered"];
        using (CompletionPort port = Ports.Create(CompletionPortBackend.Automatic))
        {
            port.PostQueuedCompletionStatus("post", 1, null);
            Expect.Completion(port);
        }

        Assert.Equal(1, Read()["socknotify.post.delivered"] - before); // A counter never goes down.
    }

    [Fact]
    public void The_entrys_kind_costs_it_no_size() =>
        Assert.Equal(40, System.Runtime.CompilerServices.Unsafe.SizeOf<CompletionEntry>()); // Three references, three 32-bit fields and the kind byte in their padding.

    /// <summary>The up-down counters: figures of now, back where they were once what a test made is gone.</summary>
    private static readonly string[] s_figuresOfNow =
    [
        "socknotify.port.active", "socknotify.registration.active", "socknotify.operation.active", "socknotify.pool.buffer.lent", "socknotify.queue.length",
    ];

    /// <summary>Collects every SockNotify instrument once.</summary>
    private static Dictionary<string, long> Read()
    {
        // The instruments are made with the process's first port, which may still be to come.
        System.Runtime.CompilerServices.RuntimeHelpers.RunClassConstructor(typeof(SockNotify.Internal.PortMetrics).TypeHandle);
        Dictionary<string, long> figures = [];
        using MeterListener listener = new()
        {
            InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == SockNotify.Internal.PortMetrics.MeterName)
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => figures[instrument.Name] = value);
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => figures[instrument.Name] = value);
        listener.Start();
        listener.RecordObservableInstruments();
        string[] counters = ["socknotify.notification.delivered", "socknotify.completion.delivered", "socknotify.post.delivered"];
        Assert.Equal(s_figuresOfNow.Concat(counters).Order(), figures.Keys.Order());
        return figures;
    }
}
