using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Jobs;
using SockNotify.Internal;

namespace SockNotify.Benchmarks;

/// <summary>
/// What the port's sweep for sockets disposed without <c>CloseSocket</c> costs at 100,000 associations: one sweep
/// (the next 16,384 associations, every 50 ms) against a scan of all of them, which is what each sweep did before it
/// was bounded. The associations share one open socket (the descriptor limit here is 20,000), so no slot is found
/// closed and the figure is the scan alone.
/// </summary>
[SimpleJob(RuntimeMoniker.Net10_0, launchCount: 1, warmupCount: 3, iterationCount: 10)]
public class SweepBenchmarks
{
    private const int Associations = 100_000;
    private readonly List<Association> _closed = [];
    private CompletionPort _port = null!;
    private Socket _socket = null!;
    private int _cursor;

    [GlobalSetup]
    public void Setup()
    {
        _port = new CompletionPort();
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        for (int i = 0; i < Associations; i++)
        {
            _port.Core.Registrations.AllocateAssociation(_socket.SafeHandle, i);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _port.Dispose();
        _socket.Dispose();
    }

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
