using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Jobs;
using SockNotify.Internal;

namespace SockNotify.Benchmarks;

/// <summary>
/// What the port's sweep for sockets disposed without <c>CloseSocket</c> costs at 100,000 associations: one sweep
/// (the next 16,384 associations, every 50 ms) against a scan of all of them, which is what each sweep did before it
/// was bounded. The descriptor limit here is 20,000, so each association wraps a handle that owns no descriptor; between
/// them lie 480 bytes of other objects, as a real association sits among its Socket's, so the scan misses the cache as
/// it would. None is closed: the figure is the scan alone.
/// </summary>
[SimpleJob(RuntimeMoniker.Net10_0, launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class SweepBenchmarks
{
    private const int Associations = 100_000;
    private readonly List<Association> _closed = [];
    private readonly List<byte[]> _neighbours = [];
    private CompletionPort _port = null!;
    private int _cursor;

    [GlobalSetup]
    public void Setup()
    {
        _port = new CompletionPort();
        for (int i = 0; i < Associations; i++)
        {
            SafeSocketHandle handle = new(1_000_000 + i, ownsHandle: false);
            _neighbours.Add(new byte[480]);
            _port.Core.Registrations.AllocateAssociation(handle, i);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _port.Dispose();

    [Benchmark(Baseline = true, Description = "Scan of all 100,000")]
    public int FullScan()
    {
        int cursor = 0;
        _port.Core.Registrations.CollectClosedAssociations(_closed, ref cursor, Associations);
        return _closed.Count;
    }

    [Benchmark(Description = "One sweep (16,384)")]
    public int OneSweep()
    {
        _port.Core.Registrations.CollectClosedAssociations(_closed, ref _cursor, OperationManager.SweepBudget);
        return _closed.Count;
    }
}
