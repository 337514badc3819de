using System.Diagnostics.Metrics;

namespace SockNotify.Cli.Soak;

/// <summary>SockNotify's own figures, summed over the process's live ports.</summary>
internal readonly record struct SockNotifyFigures(int Ports, int Registrations, int Operations, int BuffersLent);

/// <summary>
/// Reads the library's meter (<c>SockNotify</c>) in-process: its instruments are observable, so each
/// <see cref="Read"/> asks the library for the current figures, the way dotnet-counters or OpenTelemetry would.
/// </summary>
internal sealed class SockNotifyMeter : IDisposable
{
    private const string MeterName = "SockNotify";
    private const string Ports = "socknotify.port.active";
    private const string Registrations = "socknotify.registration.active";
    private const string Operations = "socknotify.operation.active";
    private const string BuffersLent = "socknotify.pool.buffer.lent";

    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<string, long> _latest = [];

    public SockNotifyMeter()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeterName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<int>((instrument, value, _, _) => _latest[instrument.Name] = value);
        _listener.SetMeasurementEventCallback<long>((instrument, value, _, _) => _latest[instrument.Name] = value);
        _listener.Start();
    }

    /// <summary>The figures now; all zero before the first port is created (the meter does not exist until then).</summary>
    public SockNotifyFigures Read()
    {
        lock (_gate)
        {
            _latest.Clear();
            _listener.RecordObservableInstruments(); // Calls back on this thread, once per instrument.
            return new SockNotifyFigures(Figure(Ports), Figure(Registrations), Figure(Operations), Figure(BuffersLent));
        }
    }

    public void Dispose() => _listener.Dispose();

    private int Figure(string name) => _latest.TryGetValue(name, out long value) ? (int)value : 0;
}
