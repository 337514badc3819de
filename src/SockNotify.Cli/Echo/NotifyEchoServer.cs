using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace SockNotify.Cli.Echo;

/// <summary>
/// An echo server built the way the seed's multithreaded server is: one <see cref="CompletionPort"/>, N threads, a
/// persistent level registration on the (non-blocking) listener, one-shot level registrations on connections, and
/// every re-arm batched into the thread's next ProcessSocketNotifications call. With a single thread no other thread
/// can race for a connection, so connections are registered persistent level instead, as in the seed's poll
/// replacement, and a registration changes only when a connection switches between waiting for In and for Out.
/// <para>Each notification is answered with one receive into the thread's buffer and a send of what arrived. A
/// connection holds no buffer while idle: only when the peer does not take an echo at once is the rest copied into a
/// pooled buffer, and the connection waits for Out instead of In until it is sent (back-pressure).</para>
/// </summary>
internal sealed class NotifyEchoServer : IEchoServer
{
    private const int ReceiveBufferSize = 64 * 1024;
    private const int DequeueCount = 64;
    private static readonly TimeSpan AcceptErrorPause = TimeSpan.FromMilliseconds(50);

    /// <summary>The key of the posted packet that stops one worker.</summary>
    private static readonly object StopKey = new();

    private readonly CompletionPort _port;
    private readonly Socket _listener;
    private readonly Thread[] _workers;
    private readonly ConcurrentDictionary<Connection, byte> _connections = new();
    private readonly SocketNotifyTrigger _connectionTrigger;
    private readonly bool _persistent;
    private long _accepted;
    private int _stopped;

    private NotifyEchoServer(Socket listener, int threads, CompletionPortBackend backend)
    {
        _port = new CompletionPort(new CompletionPortOptions { Backend = backend });
        _listener = listener;
        _persistent = threads == 1;
        _connectionTrigger = _persistent
            ? SocketNotifyTrigger.Level | SocketNotifyTrigger.Persistent
            : SocketNotifyTrigger.Level | SocketNotifyTrigger.OneShot;
        _workers = new Thread[threads];
        for (int i = 0; i < threads; i++)
        {
            _workers[i] = new Thread(Work) { IsBackground = true, Name = $"notify echo {i}" };
            _workers[i].Start();
        }
    }

    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public CompletionPortBackend? Backend => _port.Backend;

    public static NotifyEchoServer Start(IPEndPoint endPoint, int threads, CompletionPortBackend backend = CompletionPortBackend.Automatic)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Socket listener = new(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        NotifyEchoServer? server = null;
        try
        {
            listener.Bind(endPoint);
            listener.Listen();
            listener.Blocking = false;
            server = new NotifyEchoServer(listener, threads, backend);
            SocketNotifyRegistration registration = new()
            {
                Socket = listener,
                CompletionKey = listener,
                EventFilter = SocketNotifyEvents.In,
                Operation = SocketNotifyOperation.Enable,
                TriggerFlags = SocketNotifyTrigger.Level | SocketNotifyTrigger.Persistent,
            };
            server._port.ProcessSocketNotifications(ref registration);
            if (registration.RegistrationResult != SocketNotifyResult.Success)
            {
                throw new InvalidOperationException($"Registering the listener failed: {registration.RegistrationResult}.");
            }

            return server;
        }
        catch
        {
            server?.StopAsync().GetAwaiter().GetResult();
            listener.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Stops the workers with one posted packet that each passes on as it leaves (the seed's exit chain), then removes
    /// every registration and closes every socket.
    /// </summary>
    public Task<string> StopAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return Task.FromResult("already stopped");
        }

        _port.PostQueuedCompletionStatus(StopKey, 0, null);

        foreach (Thread worker in _workers)
        {
            worker.Join();
        }

        // The workers are gone, so no one else dequeues. Remove what is still registered first, taking each Remove here
        // (a level registration that stays ready would otherwise keep a draining loop busy forever); then what is left
        // to dequeue is the Remove notifications of the workers' last batches.
        int removed = _port.DeregisterAndWait(_listener) == SocketNotifyResult.Success ? 1 : 0;
        int open = 0;
        foreach (Connection connection in _connections.Keys)
        {
            if (_port.DeregisterAndWait(connection.Socket) == SocketNotifyResult.Success)
            {
                removed++;
                open++;
            }
        }

        CompletionEntry[] entries = new CompletionEntry[DequeueCount];
        while (_port.GetQueuedCompletionStatus(entries, out int count, 0) == CompletionWaitResult.Success)
        {
            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                removed += entry.CompletionKey is Connection && (entry.Events & SocketNotifyEvents.Remove) != 0 ? 1 : 0;
            }
        }

        foreach (Connection connection in _connections.Keys)
        {
            connection.Close();
        }

        _connections.Clear();
        _port.Dispose();
        _listener.Dispose();
        return Task.FromResult($"served {Interlocked.Read(ref _accepted)} connections; removed {removed} registrations ({open} connections open)");
    }

    public async ValueTask DisposeAsync() => await StopAsync().ConfigureAwait(false);

    private void Work()
    {
        CompletionEntry[] entries = new CompletionEntry[DequeueCount];
        SocketNotifyRegistration[] batch = new SocketNotifyRegistration[DequeueCount];
        int batchCount = 0;
        byte[] buffer = GC.AllocateUninitializedArray<byte>(ReceiveBufferSize, pinned: true);
        bool stop = false;
        while (!stop)
        {
            CompletionWaitResult result = _port.ProcessSocketNotifications(batch.AsSpan(0, batchCount), Timeout.Infinite, entries, out int count);
            ReportFailures(batch.AsSpan(0, batchCount));
            batchCount = 0;
            if (result == CompletionWaitResult.PortClosed)
            {
                return;
            }

            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                switch (entry.CompletionKey)
                {
                    case Connection connection:
                        if (Serve(connection, entry.Events, buffer) is { } next)
                        {
                            Append(ref batch, ref batchCount, next);
                        }

                        break;

                    case Socket:
                        AcceptAll(ref batch, ref batchCount);
                        break;

                    default: // StopKey: finish this batch, then leave.
                        stop = true;
                        break;
                }
            }
        }

        // Apply what this thread still owes, and wake the next worker.
        _port.ProcessSocketNotifications(batch.AsSpan(0, batchCount));
        ReportFailures(batch.AsSpan(0, batchCount));
        _port.PostQueuedCompletionStatus(StopKey, 0, null);
    }

    private void AcceptAll(ref SocketNotifyRegistration[] batch, ref int batchCount)
    {
        // Persistent level with many threads: several may be woken for one connection; the others see WouldBlock.
        while (true)
        {
            Socket accepted;
            try
            {
                accepted = _listener.Accept();
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionAborted or SocketError.ConnectionReset)
            {
                continue; // Reset before it was accepted: take the next one.
            }
            catch (SocketException e)
            {
                if (e.SocketErrorCode != SocketError.WouldBlock)
                {
                    // Out of descriptors or memory: the listener stays readable, so without a pause every worker would
                    // spin on it. Pause, then let the level registration report it again.
                    Thread.Sleep(AcceptErrorPause);
                }

                return;
            }

            accepted.Blocking = false;
            accepted.NoDelay = true;
            Connection connection = new(accepted);
            _connections.TryAdd(connection, 0);
            Interlocked.Increment(ref _accepted);
            Append(ref batch, ref batchCount, Arm(connection, SocketNotifyEvents.In)!.Value);
        }
    }

    /// <summary>Handles one notification of a connection; returns the registration it needs next, if any.</summary>
    private SocketNotifyRegistration? Serve(Connection connection, SocketNotifyEvents events, byte[] buffer)
    {
        if ((events & SocketNotifyEvents.Remove) != 0)
        {
            // The last notification of the registration: the connection's state may go now.
            _connections.TryRemove(connection, out _);
            connection.Close();
            return null;
        }

        if ((events & SocketNotifyEvents.Err) != 0)
        {
            return Remove(connection);
        }

        if (connection.HasPending)
        {
            return connection.SendPending() switch
            {
                SendProgress.Done => Arm(connection, SocketNotifyEvents.In),
                SendProgress.Blocked => Arm(connection, SocketNotifyEvents.Out),
                _ => Remove(connection),
            };
        }

        int received = connection.Socket.Receive(buffer, SocketFlags.None, out SocketError error);
        if (error == SocketError.WouldBlock)
        {
            return Arm(connection, SocketNotifyEvents.In); // Spurious.
        }

        if (error != SocketError.Success || received == 0)
        {
            return Remove(connection); // Reset, or the peer finished sending and everything was echoed.
        }

        return connection.Send(buffer.AsSpan(0, received)) switch
        {
            SendProgress.Done => Arm(connection, SocketNotifyEvents.In),
            SendProgress.Blocked => Arm(connection, SocketNotifyEvents.Out),
            _ => Remove(connection),
        };
    }

    /// <summary>The registration that makes the connection wait for <paramref name="filter"/>; none when a persistent one already does.</summary>
    private SocketNotifyRegistration? Arm(Connection connection, SocketNotifyEvents filter)
    {
        if (_persistent && connection.Armed == filter)
        {
            return null;
        }

        connection.Armed = filter;
        return new SocketNotifyRegistration
        {
            Socket = connection.Socket,
            CompletionKey = connection,
            EventFilter = filter,
            Operation = SocketNotifyOperation.Enable,
            TriggerFlags = _connectionTrigger,
        };
    }

    private static SocketNotifyRegistration Remove(Connection connection) => new()
    {
        Socket = connection.Socket,
        CompletionKey = connection, // Not used by Remove; it lets a failed item find its connection.
        Operation = SocketNotifyOperation.Remove,
    };

    private static void Append(ref SocketNotifyRegistration[] batch, ref int batchCount, SocketNotifyRegistration registration)
    {
        if (batchCount == batch.Length)
        {
            Array.Resize(ref batch, batch.Length * 2);
        }

        batch[batchCount++] = registration;
    }

    private void ReportFailures(ReadOnlySpan<SocketNotifyRegistration> applied)
    {
        foreach (SocketNotifyRegistration registration in applied)
        {
            // A failed item means the connection can get no further notification (its socket was closed under it,
            // or a Remove found it gone): this thread is the only one that can still release it.
            if (registration.RegistrationResult != SocketNotifyResult.Success && registration.CompletionKey is Connection connection)
            {
                _connections.TryRemove(connection, out _);
                connection.Close();
            }
        }
    }

    private enum SendProgress
    {
        Done,
        Blocked,
        Failed,
    }

    /// <summary>One client connection. Holds a buffer only while an echo waits for send space.</summary>
    private sealed class Connection(Socket socket)
    {
        private byte[]? _pending;
        private int _pendingOffset;
        private int _pendingCount;

        public Socket Socket { get; } = socket;

        /// <summary>What the connection's registration waits for (In, or Out while an echo is pending).</summary>
        public SocketNotifyEvents Armed { get; set; }

        public bool HasPending => _pendingCount > 0;

        public SendProgress Send(ReadOnlySpan<byte> data)
        {
            int sent = 0;
            while (sent < data.Length)
            {
                int count = Socket.Send(data[sent..], SocketFlags.None, out SocketError error);
                if (error == SocketError.WouldBlock)
                {
                    _pending = ArrayPool<byte>.Shared.Rent(data.Length - sent);
                    data[sent..].CopyTo(_pending);
                    _pendingOffset = 0;
                    _pendingCount = data.Length - sent;
                    return SendProgress.Blocked;
                }

                if (error != SocketError.Success)
                {
                    return SendProgress.Failed;
                }

                sent += count;
            }

            return SendProgress.Done;
        }

        public SendProgress SendPending()
        {
            while (_pendingCount > 0)
            {
                int count = Socket.Send(_pending.AsSpan(_pendingOffset, _pendingCount), SocketFlags.None, out SocketError error);
                if (error == SocketError.WouldBlock)
                {
                    return SendProgress.Blocked;
                }

                if (error != SocketError.Success)
                {
                    return SendProgress.Failed;
                }

                _pendingOffset += count;
                _pendingCount -= count;
            }

            ReturnPending();
            return SendProgress.Done;
        }

        public void Close()
        {
            ReturnPending();
            Socket.Dispose();
        }

        private void ReturnPending()
        {
            if (_pending is not null)
            {
                ArrayPool<byte>.Shared.Return(_pending);
                _pending = null;
                _pendingCount = 0;
            }
        }
    }
}
