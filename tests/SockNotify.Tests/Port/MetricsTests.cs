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
        Assert.All(after, figure => Assert.Equal(before[figure.Key], figure.Value));
    }

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
        listener.Start();
        listener.RecordObservableInstruments();
        Assert.Equal(4, figures.Count);
        return figures;
    }
}
