using System.Net;
using System.Net.Sockets;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Jobs;

namespace SockNotify.Benchmarks;

/// <summary>
/// The dequeue and re-arm paths, each against the bare syscall it wraps, so the figures read as "our cost on top of
/// the kernel's". A socket with one unread byte keeps In ready for the whole run, so every call has one event.
/// MemoryDiagnoser must show 0 B allocated for every SockNotify row.
/// </summary>
[MemoryDiagnoser]
[SimpleJob(RuntimeMoniker.Net10_0, launchCount: 1, warmupCount: 3, iterationCount: 10)]
public unsafe class HotPathBenchmarks
{
    private readonly CompletionEntry[] _entries = new CompletionEntry[16];
    private readonly SocketNotifyRegistration[] _rearm = new SocketNotifyRegistration[1];
    private readonly object _key = new();
    private Socket _listener = null!;
    private Socket _client = null!;
    private Socket _levelSocket = null!;
    private Socket _oneShotSocket = null!;
    private CompletionPort _levelPort = null!;
    private CompletionPort _oneShotPort = null!;
    private CompletionPort _postPort = null!;
    private SafeFileDescriptorHandle _bareEpoll = null!;

    [GlobalSetup]
    public void Setup()
    {
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen();
        _client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _client.Connect(_listener.LocalEndPoint!);
        _levelSocket = _listener.Accept();
        _client.Send([1]);
        using (Socket secondClient = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            secondClient.Connect(_listener.LocalEndPoint!);
            _oneShotSocket = _listener.Accept();
            secondClient.Send([1]);
        }

        _levelPort = new CompletionPort();
        _levelPort.ProcessSocketNotifications([Enable(_levelSocket, SocketNotifyTrigger.Level)]);

        _oneShotPort = new CompletionPort();
        _rearm[0] = Enable(_oneShotSocket, SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot);
        _oneShotPort.ProcessSocketNotifications(_rearm);

        _postPort = new CompletionPort();

        _bareEpoll = new SafeFileDescriptorHandle(Interop.Epoll.Create1(Interop.Epoll.EPOLL_CLOEXEC));
        Interop.Epoll.EpollEvent registration = new() { Events = Interop.Epoll.EPOLLIN, Data = 1 };
        Interop.Epoll.Ctl(_bareEpoll.Fd, Interop.Epoll.EPOLL_CTL_ADD, _levelSocket.SafeHandle, &registration);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _levelPort.Dispose();
        _oneShotPort.Dispose();
        _postPort.Dispose();
        _bareEpoll.Dispose();
        _levelSocket.Dispose();
        _oneShotSocket.Dispose();
        _client.Dispose();
        _listener.Dispose();
    }

    /// <summary>The floor for a dequeue: one epoll_wait returning one ready event, straight through P/Invoke.</summary>
    [Benchmark(Baseline = true)]
    public int BareEpollWait()
    {
        Interop.Epoll.EpollEvent* events = stackalloc Interop.Epoll.EpollEvent[16];
        return Interop.Epoll.Wait(_bareEpoll.Fd, events, 16, 0);
    }

    /// <summary>A dequeue of a ready level registration: one epoll_wait.</summary>
    [Benchmark]
    public int DequeueLevelNotification()
    {
        _levelPort.GetQueuedCompletionStatus(_entries, out int count, 0);
        return count;
    }

    /// <summary>The one-shot cycle of the seed's multithreaded server: re-arm (one epoll_ctl) and dequeue (one epoll_wait).</summary>
    [Benchmark]
    public int RearmOneShotAndDequeue()
    {
        _oneShotPort.ProcessSocketNotifications(_rearm, 0, _entries, out int count);
        return count;
    }

    /// <summary>A posted packet's round trip: enqueue, wake, one epoll_wait, drain.</summary>
    [Benchmark]
    public int PostAndDequeue()
    {
        _postPort.PostQueuedCompletionStatus(_key, 1, null);
        _postPort.GetQueuedCompletionStatus(_entries, out int count, 0);
        return count;
    }

    private SocketNotifyRegistration Enable(Socket socket, SocketNotifyTrigger trigger) => new()
    {
        Socket = socket,
        CompletionKey = _key,
        EventFilter = SocketNotifyEvents.In,
        Operation = SocketNotifyOperation.Enable,
        TriggerFlags = trigger,
    };
}
