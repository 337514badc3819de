using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Jobs;

namespace SockNotify.Benchmarks;

/// <summary>
/// One overlapped receive's round trip (start, complete, dequeue) on each backend, against the bare recv(2) it
/// replaces. The receives peek at one byte that stays in the socket, so every one completes with data at once.
/// MemoryDiagnoser must show 0 B allocated for every SockNotify row.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RuntimeMoniker.Net10_0, launchCount: 1, warmupCount: 3, iterationCount: 10)]
public unsafe class OperationBenchmarks
{
    private readonly CompletionEntry[] _entries = new CompletionEntry[16];
    private readonly byte[] _buffer = new byte[16];
    private Socket _listener = null!;
    private readonly List<Socket> _sockets = [];
    private Socket _bareSocket = null!;
    private Socket _ringSocket = null!;
    private Socket _epollSocket = null!;
    private CompletionPort _ringPort = null!;
    private CompletionPort _epollPort = null!;

    [GlobalSetup]
    public void Setup()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        _bareSocket = ConnectedWithOneByte();
        _ringSocket = ConnectedWithOneByte();
        _epollSocket = ConnectedWithOneByte();
        _ringPort = new CompletionPort(new CompletionPortOptions { Backend = CompletionPortBackend.IoUring });
        _ringPort.Associate(_ringSocket, null);
        _epollPort = new CompletionPort(new CompletionPortOptions { Backend = CompletionPortBackend.Epoll });
        _epollPort.Associate(_epollSocket, null);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _ringPort.Dispose();
        _epollPort.Dispose();
        _sockets.ForEach(s => s.Dispose());
        _listener.Dispose();
    }

    /// <summary>The floor: one recv(2) through P/Invoke.</summary>
    [Benchmark(Baseline = true)]
    public nint BarePeekReceive()
    {
        fixed (byte* buffer = _buffer)
        {
            return Interop.Socket.Receive(_bareSocket.SafeHandle, buffer, (nuint)_buffer.Length, (int)SocketFlags.Peek);
        }
    }

    /// <summary>io_uring: the receive is submitted and completed by the dequeue's one io_uring_enter.</summary>
    [Benchmark]
    public int IoUringReceiveAndDequeue()
    {
        _ringPort.Receive(_ringSocket, _buffer, SocketFlags.Peek, null);
        _ringPort.GetQueuedCompletionStatus(_entries, out int count, 0);
        return count;
    }

    /// <summary>epoll: the receive is performed at once (one recv) and dequeued from the port's queue.</summary>
    [Benchmark]
    public int EpollReceiveAndDequeue()
    {
        _epollPort.Receive(_epollSocket, _buffer, SocketFlags.Peek, null);
        _epollPort.GetQueuedCompletionStatus(_entries, out int count, 0);
        return count;
    }

    private Socket ConnectedWithOneByte()
    {
        Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(_listener.LocalEndPoint!);
        Socket server = _listener.Accept();
        client.Send([1]);
        _sockets.Add(client);
        _sockets.Add(server);
        return server;
    }
}
