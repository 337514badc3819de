using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace SockNotify.Cli.Echo;

/// <summary>
/// An echo server built the way the second seed's completion port server is: accepts posted ahead of time on the
/// listener, N worker threads dequeuing completions, and per connection one operation at a time: a pooled receive,
/// then a send of the very buffer the data arrived in, then the next receive once the send completed (which is also
/// the back-pressure: a peer that does not read keeps the send pending). An idle connection holds no buffer: its
/// pending receive takes one from the port's pool only when data arrives.
/// </summary>
internal sealed class CompletionEchoServer : IEchoServer
{
    private const int PostedAccepts = 16;
    private const int DequeueCount = 64;

    /// <summary>How long a failed accept waits before the next is posted.</summary>
    private static readonly TimeSpan AcceptErrorPause = TimeSpan.FromMilliseconds(50);

    // The operation contexts: which operation completed (the seed's opcode). Static, so starting one allocates nothing.
    private static readonly object AcceptOperation = new();
    private static readonly object ReceiveOperation = new();
    private static readonly object SendOperation = new();
    private static readonly object StopKey = new();

    private readonly CompletionPort _port;
    private readonly Socket _listener;
    private readonly Thread[] _workers;
    private readonly ConcurrentDictionary<Connection, byte> _connections = new();
    private int _acceptsOwed;
    private long _acceptRetryAt;
    private long _accepted;
    private int _stopped;

    private CompletionEchoServer(Socket listener, int threads, CompletionPortBackend backend)
    {
        _port = new CompletionPort(new CompletionPortOptions { Backend = backend });
        _listener = listener;
        _port.Associate(listener, listener);
        for (int i = 0; i < PostedAccepts; i++)
        {
            _port.Accept(listener, AcceptOperation);
        }

        _workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _workers[i] = new Thread(Work) { IsBackground = true, Name = $"completion echo {i}" };
            _workers[i].Start();
        }
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public CompletionPortBackend? Backend => _port.Backend;

    public static CompletionEchoServer Start(IPEndPoint endPoint, int threads, CompletionPortBackend backend = CompletionPortBackend.Automatic)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Socket listener = new(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(endPoint);
            listener.Listen();
            return new CompletionEchoServer(listener, threads, backend);
        }
        catch
        {
            listener.Dispose();
            throw;
        }
    }

    /// <summary>Stops the workers (one posted packet each), then closes every connection and the port.</summary>
    public Task<string> StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return Task.FromResult("already stopped");
        }

        foreach (Thread worker in _workers)
        {
            _port.PostQueuedCompletionStatus(StopKey, 0, null);
        }

        foreach (Thread worker in _workers)
        {
            worker.Join();
        }

        int open = _connections.Count;
        foreach (Connection connection in _connections.Keys)
        {
            _port.CloseSocket(connection.Socket);
        }

        _connections.Clear();
        _port.CloseSocket(_listener);
        _port.Dispose(); // Cancels the operations still in flight and waits for the kernel to let go of them.
        return Task.FromResult($"served {Interlocked.Read(ref _accepted)} connections on the {_port.Backend} backend ({open} open at stop)");
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private void Work()
    {
        CompletionEntry[] entries = new CompletionEntry[DequeueCount];
        while (true)
        {
            CompletionWaitResult result = _port.GetQueuedCompletionStatus(entries, out int count, UntilAcceptsDue());
            if (result == CompletionWaitResult.TimedOut)
            {
                continue;
            }

            if (result != CompletionWaitResult.Success)
            {
                return;
            }

            // Each worker takes one stop packet; a batch may hold several, and the others are passed on.
            bool stopping = false;
            foreach (ref readonly CompletionEntry entry in entries.AsSpan(0, count))
            {
                if (entry.CompletionKey != StopKey)
                {
                    Handle(entry);
                }
                else if (stopping)
                {
                    _port.PostQueuedCompletionStatus(StopKey, 0, null);
                }
                else
                {
                    stopping = true;
                }
            }

            if (stopping)
            {
                return;
            }
        }
    }

    private void Handle(in CompletionEntry entry)
    {
        if (entry.Context == AcceptOperation)
        {
            OnAccepted(entry);
        }
        else if (entry.CompletionKey is Connection connection)
        {
            if (entry.Context == ReceiveOperation)
            {
                connection.OnReceived(entry);
            }
            else
            {
                connection.OnSent(entry);
            }
        }
    }

    private void OnAccepted(in CompletionEntry entry)
    {
        if (entry.SocketError == SocketError.OperationAborted)
        {
            return; // The listener closed.
        }

        if (entry.AcceptSocket is not { } socket)
        {
            // Out of descriptors or memory: the connection stays in the listener's backlog, so an accept posted now would
            // fail at once, and again, spinning a core. The workers post it after a pause (libuv's test-emfile case). Not
            // a timer: with no descriptor left, the runtime cannot start the thread a timer callback might need.
            Volatile.Write(ref _acceptRetryAt, Environment.TickCount64 + (long)AcceptErrorPause.TotalMilliseconds);
            Interlocked.Increment(ref _acceptsOwed);
            return;
        }

        PostAccept(); // Before this one's set-up, so that a connection never waits for it.

        Interlocked.Increment(ref _accepted);
        socket.NoDelay = true;
        Connection connection = new(this, socket);
        _connections.TryAdd(connection, 0);
        _port.Associate(socket, connection);
        connection.Receive();
    }

    /// <summary>How long a worker may wait before the failed accepts are due again (infinite when none failed).</summary>
    private int UntilAcceptsDue()
    {
        if (Volatile.Read(ref _acceptsOwed) == 0)
        {
            return Timeout.Infinite;
        }

        long remaining = Volatile.Read(ref _acceptRetryAt) - Environment.TickCount64;
        if (remaining > 0)
        {
            return (int)remaining;
        }

        for (int owed = Interlocked.Exchange(ref _acceptsOwed, 0); owed > 0; owed--)
        {
            PostAccept();
        }

        return Timeout.Infinite;
    }

    private void PostAccept()
    {
        if (Volatile.Read(ref _stopped) == 0)
        {
            _port.Accept(_listener, AcceptOperation);
        }
    }

    private sealed class Connection(CompletionEchoServer server, Socket socket)
    {
        /// <summary>The receive whose pooled buffer is being echoed, returned to the pool once the send completes.</summary>
        private CompletionEntry _echoing;

        public Socket Socket { get; } = socket;

        public void Receive()
        {
            if (server._port.ReceivePooled(Socket, SocketFlags.None, ReceiveOperation) != SocketError.IOPending)
            {
                Close();
            }
        }

        public void OnReceived(in CompletionEntry entry)
        {
            if (entry.SocketError != SocketError.Success || entry.BytesTransferred == 0)
            {
                Close(); // The client finished (or failed): everything it sent was echoed already.
                return;
            }

            _echoing = entry;
            if (server._port.Send(Socket, entry.PooledData, SocketFlags.None, SendOperation) != SocketError.IOPending)
            {
                server._port.ReturnBuffer(entry);
                Close();
            }
        }

        public void OnSent(in CompletionEntry entry)
        {
            uint echoed = _echoing.BytesTransferred;
            server._port.ReturnBuffer(_echoing);
            _echoing = default;
            // A send completes short only when the connection broke after part of it went: the rest cannot follow.
            if (entry.SocketError != SocketError.Success || entry.BytesTransferred != echoed)
            {
                Close();
                return;
            }

            Receive();
        }

        private void Close()
        {
            if (server._connections.TryRemove(this, out _))
            {
                server._port.CloseSocket(Socket); // Its other operation completes aborted; the peer sees the end at once.
            }
        }
    }
}
