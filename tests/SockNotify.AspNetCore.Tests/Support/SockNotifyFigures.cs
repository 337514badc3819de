using System.Diagnostics.Metrics;

namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>The meter <c>SockNotify</c>'s figures now, summed over the process's live ports.</summary>
internal static class SockNotifyFigures
{
    public static long Read(string instrument)
    {
        long value = 0;
        using MeterListener listener = new();
        listener.InstrumentPublished = (published, meterListener) =>
        {
            if (published.Meter.Name == "SockNotify" && published.Name == instrument)
            {
                meterListener.EnableMeasurementEvents(published);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, measurement, _, _) => value += measurement);
        listener.SetMeasurementEventCallback<int>((_, measurement, _, _) => value += measurement);
        listener.Start();
        listener.RecordObservableInstruments();
        return value;
    }
}
