using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;
using static SockNotify.Tests.Model.OperationModel;

namespace SockNotify.Tests.Model;

/// <summary>
/// Drives one operation sequence on a real port, loopback connections and a listener, in step with
/// <see cref="OperationModel"/>, and checks the port against it: each start's result, every completion as it is
/// dequeued, what must have completed by the end of each dequeue step, and at the end of the sequence (after reading
/// every byte still on its way and cancelling what waits) that all operations completed once, nothing more arrives,
/// the streams are intact, the port holds no operation and, once disposed, no pool memory and nothing in the kernel.
/// </summary>
internal sealed class OperationRunner : IDisposable
{
    /// <summary>How long a dequeue step waits for what must complete (a plain dispose waits for the 50 ms sweep).</summary>
    private const int DeadlineMilliseconds = 5000;

    /// <summary>The silence the end of a sequence waits for: a second completion is usually queued at once.</summary>
    private const int QuietMilliseconds = 2;

    private readonly CompletionPort _port;
    private readonly OperationModel _model;
    private readonly Coverage? _coverage;
    private readonly LoopbackPairs _pairs;
    private readonly Socket _listener;
    private readonly Dictionary<End, Socket> _sockets = [];
    private readonly List<(Socket Client, object Key)> _connecting = [];
    private readonly Lock _gate = new();
    private readonly DequeuingThreads _dequeuers = new();
    private readonly List<string> _pooledCompletions = [];
    private int _keys;
    private bool _portDisposed;

    private OperationRunner(CompletionPortBackend backend, int connections, LoopbackPairs pairs, Coverage? coverage)
    {
        _model = new OperationModel(coverage);
        _coverage = coverage;
        _pairs = pairs;
        _listener = pairs.AcceptListener;
        _port = Ports.Create(backend, PoolCount, PoolSize);
        try
        {
            _port.Associate(_listener, _model.ListenerKey);
            for (int i = 0; i < connections; i++)
            {
                (Socket server, Socket client) = pairs.Create();
                AddConnection(server, client);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="steps"/> and the closing checks; throws a <see cref="ModelViolation"/> naming the step that failed.</summary>
    public static void Check(CompletionPortBackend backend, OperationStep[] steps)
    {
        using LoopbackPairs pairs = new();
        Check(backend, steps, pairs);
    }

    public static void Check(CompletionPortBackend backend, OperationStep[] steps, LoopbackPairs pairs, Coverage? coverage = null)
    {
        int connections = Math.Min(2, steps.Select(ConnectionOf).DefaultIfEmpty(0).Max() + 1);
        using OperationRunner runner = new(backend, connections, pairs, coverage);
        for (int i = 0; i < steps.Length; i++)
        {
            try
            {
                runner.Apply(steps[i]);
            }
            catch (Exception error)
            {
                throw new ModelViolation($"Step {i + 1} of {steps.Length}, {SequencePrinter.Step(steps[i])}: {error.Message}", error);
            }
        }

        try
        {
            runner.End();
        }
        catch (Exception error)
        {
            throw new ModelViolation($"At the end of the sequence: {error.Message}", error);
        }
    }

    public void Dispose()
    {
        _port.Dispose();
        _dequeuers.Dispose(); // After the port: an io_uring request dies with the thread that submitted it.
        foreach (Socket socket in _sockets.Values)
        {
            socket.Dispose();
        }

        foreach ((Socket client, _) in _connecting)
        {
            client.Dispose();
        }

        // Leave the shared listener's backlog empty for the next sequence (there is something only after a failure).
        _listener.Blocking = false;
        while (true)
        {
            try
            {
                _listener.Accept().Dispose();
            }
            catch (SocketException)
            {
                break;
            }
        }
    }

    private static int ConnectionOf(OperationStep step) => step switch
    {
        OperationStep.Receive s => s.Connection,
        OperationStep.ReceivePooled s => s.Connection,
        OperationStep.Send s => s.Connection,
        OperationStep.CancelIo s => s.Connection,
        OperationStep.CloseSocket s => s.Connection,
        OperationStep.Dispose s => s.Connection,
        OperationStep.Dissociate s => s.Connection,
        OperationStep.Shutdown s => s.Connection,
        _ => 0,
    };

    private void Apply(OperationStep step)
    {
        if (_portDisposed)
        {
            return; // The sequence ended with the port.
        }

        switch (step)
        {
            case OperationStep.Receive(int connection, bool client, int bytes):
                StartReceive(EndOf(connection, client), bytes);
                break;
            case OperationStep.ReceivePooled(int connection, bool client):
                End pooled = EndOf(connection, client);
                Start(_model.Started(OperationKind.ReceivePooled, pooled, 0), pooled, op => _port.ReceivePooled(_sockets[pooled], SocketFlags.None, op));
                break;
            case OperationStep.Send(int connection, bool client, int bytes):
                End sender = EndOf(connection, client);
                Operation send = _model.Started(OperationKind.Send, sender, bytes, Content(sender, bytes));
                Start(send, sender, op => _port.Send(_sockets[sender], op.Data, SocketFlags.None, op));
                break;
            case OperationStep.ReturnBuffer(int lent, bool twice) when _model.Lent.Count > 0:
                CompletionEntry entry = _model.Lent[lent % _model.Lent.Count];
                _model.Lent.Remove(entry);
                _port.ReturnBuffer(entry);
                if (twice && !Throws<InvalidOperationException>(() => _port.ReturnBuffer(entry)))
                {
                    throw new ModelViolation("A second ReturnBuffer of the same completion did not throw.");
                }

                break;
            case OperationStep.CancelIo(int connection, bool client, bool all):
                Cancel(EndOf(connection, client), all);
                break;
            case OperationStep.CloseSocket(int connection, bool client):
                End closed = EndOf(connection, client);
                _port.CloseSocket(_sockets[closed]); // Also after a plain dispose: then it ends what the sweep has not yet.
                OperationModel.Closed(closed);
                break;
            case OperationStep.Dispose(int connection, bool client):
                End disposed = EndOf(connection, client);
                _sockets[disposed].Dispose();
                OperationModel.Closed(disposed);
                break;
            case OperationStep.Dissociate(int connection, bool client):
                Dissociate(EndOf(connection, client));
                break;
            case OperationStep.Shutdown(int connection, bool client):
                End shut = EndOf(connection, client);
                if (!shut.Closed && !shut.ShutDown && !shut.Connection.Broken)
                {
                    _sockets[shut].Shutdown(SocketShutdown.Send);
                    shut.ShutDown = true;
                }

                break;
            case OperationStep.AcceptConnect(bool portConnect):
                AcceptConnect(portConnect);
                break;
            case OperationStep.Accept:
                Operation accept = _model.Started(OperationKind.Accept, null, 0);
                ExpectStarted(accept, SocketError.IOPending, _port.Accept(_listener, accept));
                break;
            case OperationStep.CancelAccepts:
                List<Operation> accepts = [.. _model.PendingAccepts];
                if (_port.CancelIo(_listener) && accepts.Count == 0)
                {
                    throw new ModelViolation("CancelIo on the listener reported a cancel with no Accept pending.");
                }

                OperationModel.CancelRequested(accepts);
                break;
            case OperationStep.Dequeue(int entries, int threads):
                Settle(entries, threads);
                break;
            case OperationStep.DisposePort:
                DisposePort();
                break;
            case OperationStep.DequeueOnExitingThread(int entries):
                DequeueOnExitingThread(entries);
                break;
        }
    }

    private void StartReceive(End end, int bytes) =>
        Start(_model.Started(OperationKind.Receive, end, bytes, new byte[bytes]), end, op => _port.Receive(_sockets[end], op.Data, SocketFlags.None, op));

    private void Start(Operation operation, End end, Func<Operation, SocketError> start) =>
        ExpectStarted(operation, ExpectedStart(end), start(operation));

    private void ExpectStarted(Operation operation, SocketError expected, SocketError started)
    {
        _coverage?.Count($"start {operation.Kind} -> {started}");
        if (started != SocketError.IOPending)
        {
            _model.NotStarted(operation);
        }

        if (started != expected)
        {
            throw new ModelViolation($"Starting {operation} returned {started}; the model expects {expected}.");
        }
    }

    private void Cancel(End end, bool all)
    {
        List<Operation> pending = [.. end.Pending.OrderBy(o => o.Id)];
        List<Operation> targets = all ? pending : [.. pending.Take(1)];
        object? context = all ? null : targets.FirstOrDefault() ?? new object(); // A context nothing has: cancels nothing.
        if (_port.CancelIo(_sockets[end], context) && targets.Count == 0)
        {
            throw new ModelViolation($"CancelIo on {end.Name} reported a cancel with nothing pending.");
        }

        OperationModel.CancelRequested(targets);
    }

    private void Dissociate(End end)
    {
        Socket socket = _sockets[end];
        bool dissociated = _port.Dissociate(socket);
        OperationModel.CancelRequested(end.Pending);
        if (end.Closed)
        {
            return; // Whether the port still held it depends on the sweep; nothing to associate again.
        }

        if (!dissociated)
        {
            throw new ModelViolation($"Dissociate of {end.Name}, which is associated, returned false.");
        }

        end.Key = new Key($"{end.Name} #{++_keys}");
        _port.Associate(socket, end.Key);
    }

    /// <summary>Starts an Accept and connects a new socket, then dequeues until that connection was accepted (by the oldest pending Accept).</summary>
    private void AcceptConnect(bool portConnect)
    {
        Operation accept = _model.Started(OperationKind.Accept, null, 0);
        ExpectStarted(accept, SocketError.IOPending, _port.Accept(_listener, accept));
        Socket client = LoopbackPairs.NewClient();
        Key key = new($"connecting socket #{++_keys}");
        _connecting.Add((client, key));
        client.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        Operation? connect = null;
        if (portConnect)
        {
            _port.Associate(client, key);
            connect = _model.Started(OperationKind.Connect, null, 0, key: key);
            ExpectStarted(connect, SocketError.IOPending, _port.Connect(client, _listener.LocalEndPoint!, connect));
        }
        else
        {
            client.Connect(_listener.LocalEndPoint!);
            _port.Associate(client, key);
        }

        _model.ClientConnected(client);
        Settle(1, 1, () => !_connecting.Any(c => c.Client == client) && (connect?.Done ?? true));
    }

    /// <summary>An Accept completed with a connection: it is one of ours, and becomes a connection of the model.</summary>
    private void OnAccepted(Operation accept, Socket accepted)
    {
        IPEndPoint? remote = accepted.RemoteEndPoint as IPEndPoint;
        int index = _connecting.FindIndex(c => Equals(c.Client.LocalEndPoint, remote));
        if (index < 0)
        {
            accepted.Dispose();
            throw new ModelViolation($"{accept} got a connection from {remote}, which no step made.");
        }

        (Socket client, object clientKey) = _connecting[index];
        _connecting.RemoveAt(index);
        accept.AcceptedClient = client;
        Connection connection = _model.AddConnection(new Key($"connection {_model.Connections.Count} accepted end"), clientKey);
        _sockets[connection.Server] = accepted;
        _sockets[connection.Client] = client;
        _port.Associate(accepted, connection.Server.Key);
    }

    private void AddConnection(Socket server, Socket client)
    {
        int index = _model.Connections.Count;
        Connection connection = _model.AddConnection(new Key($"connection {index} accepted end"), new Key($"connection {index} connecting end"));
        _sockets[connection.Server] = server;
        _sockets[connection.Client] = client;
        _port.Associate(server, connection.Server.Key);
        _port.Associate(client, connection.Client.Key);
    }

    /// <summary>
    /// Reads every byte still on its way on connections that never broke, cancels what waits, takes every completion,
    /// then checks silence, the streams, the port's counters and, after disposal, its memory.
    /// </summary>
    private void End()
    {
        if (_portDisposed)
        {
            return; // Checked when it was disposed.
        }

        long deadline = Environment.TickCount64 + DeadlineMilliseconds;
        while (true)
        {
            ReturnLentBuffers();
            bool outstanding = false;
            foreach (Connection connection in _model.Connections.Where(c => !c.Broken))
            {
                foreach (End sender in (End[])[connection.Server, connection.Client])
                {
                    if (Unreceived(sender) > 0 || sender.Sends.Count > 0)
                    {
                        outstanding = true;
                        if (!sender.Peer.Receives.Any(o => !o.CancelRequested))
                        {
                            StartReceive(sender.Peer, 65536);
                        }
                    }
                }
            }

            if (!outstanding)
            {
                break;
            }

            if (Environment.TickCount64 > deadline)
            {
                throw new ModelViolation($"Bytes still on their way after {DeadlineMilliseconds} ms of reading.");
            }

            Settle(16, 1);
        }

        foreach (End end in _model.Connections.SelectMany(c => (End[])[c.Server, c.Client]).Where(e => e.Pending.Any() && !e.Closed))
        {
            _port.CancelIo(_sockets[end]);
            OperationModel.CancelRequested(end.Pending);
        }

        if (_model.PendingAccepts.Any())
        {
            _port.CancelIo(_listener);
            OperationModel.CancelRequested(_model.PendingAccepts);
        }

        Settle(16, 1, () => !_model.Pending.Any());
        ReturnLentBuffers();
        CompletionEntry[] entries = new CompletionEntry[16];
        if (_port.GetQueuedCompletionStatus(entries, out int count, QuietMilliseconds) != CompletionWaitResult.TimedOut)
        {
            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                Observe(entry);
            }

            throw new ModelViolation($"Completions after every operation completed: {string.Join(", ", entries.Take(count).Select(e => OperationModel.Describe(e)))}.");
        }

        if (_port.OperationsInUse != 0)
        {
            throw new ModelViolation($"The port holds {_port.OperationsInUse} operations after every one completed.");
        }

        _model.CheckStreamsAndAccepts();
        foreach ((End end, Socket socket) in _sockets.Where(s => !s.Key.Closed))
        {
            _port.CloseSocket(socket);
        }

        if (!_port.Dissociate(_listener))
        {
            throw new ModelViolation("The listener was no longer associated.");
        }

        Internal.BufferPool? pool = _model.UsedPool ? _port.Core.Engine.Buffers : null;
        long disposing = Environment.TickCount64;
        _port.Dispose();
        long disposal = Environment.TickCount64 - disposing;
        if (!_port.Core.Engine.ReleasedEverything)
        {
            throw new ModelViolation($"The kernel still held operation memory after disposal ({disposal} ms), with no operation pending.");
        }

        // The slab is freed by the teardown, which runs when the last call leaves the port: that may be the sweeper's
        // or a pool thread's, a moment after Dispose returned.
        if (pool is not null && !SpinWait.SpinUntil(() => pool.IsReleased, 1000))
        {
            throw new ModelViolation($"The pool's memory was not freed at disposal ({disposal} ms): {LentBuffers(pool)}; " +
                $"pooled completions taken: {string.Join(", ", _pooledCompletions)}.");
        }
    }

    /// <summary>Which buffers the pool counts as lent, read from its private state (for a failure message only).</summary>
    private static string LentBuffers(Internal.BufferPool pool)
    {
        const System.Reflection.BindingFlags Private = System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance;
        object? lent = typeof(Internal.BufferPool).GetField("_lent", Private)?.GetValue(pool);
        IEnumerable<string> buffers = Enumerable.Range(0, pool.Count)
            .Select(id => (id, state: typeof(Internal.PooledBuffer).GetField("_state", Private)?.GetValue(pool[id]) as int?))
            .Where(b => b.state is { } state && (state & 1) != 0)
            .Select(b => $"buffer {b.id} (lease {b.state >> 1})");
        return $"the pool counts {lent ?? "?"} lent, marked lent: [{string.Join(", ", buffers)}]";
    }

    /// <summary>Disposes the port with operations pending and checks what disposal promises.</summary>
    private void DisposePort()
    {
        _portDisposed = true;
        Internal.BufferPool? pool = _model.UsedPool ? _port.Core.Engine.Buffers : null;
        _coverage?.Count($"port disposed with {_model.Pending.Count()} operations pending");
        _port.Dispose();
        if (!_port.Core.Engine.ReleasedEverything)
        {
            throw new ModelViolation("The kernel still held operation memory when Dispose returned.");
        }

        if (!Throws<ObjectDisposedException>(() => _port.GetQueuedCompletionStatus(new CompletionEntry[1], out _, 0)))
        {
            throw new ModelViolation("A dequeue after Dispose did not throw ObjectDisposedException.");
        }

        foreach (CompletionEntry entry in _model.Lent)
        {
            if (!entry.PooledData.Span.SequenceEqual(((Operation)entry.Context!).Received))
            {
                throw new ModelViolation($"{entry.Context}'s pooled bytes changed after the port was disposed.");
            }
        }

        ReturnLentBuffers(); // Allowed after disposal: the last one back frees the pool.
        if (pool is not null && !SpinWait.SpinUntil(() => pool.IsReleased, 1000))
        {
            throw new ModelViolation($"The pool's memory was not freed after disposal and the last return: {LentBuffers(pool)}.");
        }

        _model.CheckStreamsAndAccepts(prefixOnly: true);
    }

    private void ReturnLentBuffers()
    {
        foreach (CompletionEntry entry in _model.Lent)
        {
            _port.ReturnBuffer(entry);
        }

        _model.Lent.Clear();
    }

    /// <summary>Dequeues until nothing the model requires is pending and <paramref name="until"/> holds; then looks once more without waiting.</summary>
    private void Settle(int size, int threads, Func<bool>? until = null)
    {
        long deadline = Environment.TickCount64 + DeadlineMilliseconds;
        if (threads > 1)
        {
            SettleOnThreads(size, threads, until, deadline);
            return;
        }

        CompletionEntry[] entries = new CompletionEntry[size];
        for (List<Operation> must; !Settled(until, out must);)
        {
            int remaining = (int)Math.Max(0, deadline - Environment.TickCount64);
            if (_port.GetQueuedCompletionStatus(entries, out int count, remaining) != CompletionWaitResult.Success)
            {
                throw new ModelViolation($"Not completed within {DeadlineMilliseconds} ms: {Describe(must)}.");
            }

            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                Observe(entry);
            }
        }

        if (_port.GetQueuedCompletionStatus(entries, out int more, 0) == CompletionWaitResult.Success)
        {
            foreach (CompletionEntry entry in entries.AsSpan(0, more))
            {
                Observe(entry);
            }
        }
    }

    private void SettleOnThreads(int size, int threads, Func<bool>? until, long deadline)
    {
        ConcurrentDequeue.Run(_port, threads, size, deadline, (entry, _) => Observe(entry), () => Settled(until, out List<Operation> _), _dequeuers.Run);
        if (!Settled(until, out List<Operation> must))
        {
            throw new ModelViolation($"{threads} threads dequeued for {DeadlineMilliseconds} ms; not completed: {Describe(must)}.");
        }
    }

    /// <summary>One dequeue on a thread of its own, which then exits: whatever it submitted for others must live on.</summary>
    private void DequeueOnExitingThread(int size)
    {
        Exception? failure = null;
        Thread thread = new(() =>
        {
            try
            {
                CompletionEntry[] entries = new CompletionEntry[size];
                if (_port.GetQueuedCompletionStatus(entries, out int count, 10) == CompletionWaitResult.Success)
                {
                    foreach (CompletionEntry entry in entries.AsSpan(0, count))
                    {
                        Observe(entry);
                    }
                }
            }
            catch (Exception error)
            {
                failure = error;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            throw new ModelViolation($"On the exiting thread: {failure.Message}", failure);
        }
    }

    private bool Settled(Func<bool>? until, out List<Operation> must)
    {
        lock (_gate)
        {
            must = _model.MustComplete();
            return must.Count == 0 && (until?.Invoke() ?? true);
        }
    }

    private void Observe(in CompletionEntry entry)
    {
        lock (_gate)
        {
            Operation operation = _model.Observe(entry);
            if (entry.PooledBuffer is { } buffer)
            {
                _pooledCompletions.Add($"{operation}: buffer {buffer.Id}, {entry.BytesTransferred} bytes");
            }
            if (entry.AcceptSocket is { } accepted)
            {
                OnAccepted(operation, accepted);
            }
        }
    }

    private End EndOf(int connection, bool client)
    {
        Connection chosen = _model.Connections[connection % _model.Connections.Count];
        return client ? chosen.Client : chosen.Server;
    }

    /// <summary>A send's bytes: a pattern of its own, so that bytes out of order or from another send show.</summary>
    private static byte[] Content(End sender, int bytes)
    {
        byte[] data = new byte[bytes];
        int seed = (sender.AllSends.Count * 131) + sender.Name.Length;
        for (int i = 0; i < bytes; i++)
        {
            data[i] = (byte)(seed + (i * 7) + (i >> 8));
        }

        return data;
    }

    private static string Describe(List<Operation> operations) => operations.Count == 0 ? "(the awaited condition)" : string.Join(", ", operations);

    private static bool Throws<TException>(Action action)
        where TException : Exception
    {
        try
        {
            action();
            return false;
        }
        catch (TException)
        {
            return true;
        }
    }

    /// <summary>
    /// Threads that dequeue for the multi-threaded steps and live as long as the sequence: with io_uring, the kernel
    /// cancels the requests a thread submitted when it exits (see <see cref="OperationModelTests"/>), so a dequeuing
    /// thread that ended mid-sequence would abort other threads' operations.
    /// </summary>
    private sealed class DequeuingThreads : IDisposable
    {
        private readonly List<(Thread Thread, System.Collections.Concurrent.BlockingCollection<Action> Work)> _threads = [];

        /// <summary>Runs <paramref name="body"/> on <paramref name="count"/> of the threads at once (with each one's number) and waits for all.</summary>
        public void Run(int count, Action<int> body)
        {
            while (_threads.Count < count)
            {
                System.Collections.Concurrent.BlockingCollection<Action> work = [];
                Thread thread = new(() =>
                {
                    foreach (Action item in work.GetConsumingEnumerable())
                    {
                        item();
                    }
                });
                thread.Start();
                _threads.Add((thread, work));
            }

            using CountdownEvent finished = new(count);
            for (int i = 0; i < count; i++)
            {
                int thread = i;
                _threads[i].Work.Add(() =>
                {
                    try
                    {
                        body(thread);
                    }
                    finally
                    {
                        finished.Signal();
                    }
                });
            }

            finished.Wait();
        }

        public void Dispose()
        {
            foreach ((Thread thread, System.Collections.Concurrent.BlockingCollection<Action> work) in _threads)
            {
                work.CompleteAdding();
                thread.Join();
                work.Dispose();
            }
        }
    }
}
