using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Model;

/// <summary>
/// Drives one notification sequence on a real port and loopback sockets, in step with <see cref="NotificationModel"/>,
/// and checks the port against it: each item's result, every entry dequeued (may), everything owed by the end of
/// each dequeue step (must), within a bounded number of dequeues (no source starves another), and at the end that
/// every registration is gone and nothing more arrives.
/// <para>The kernel is asynchronous: a peer step waits (bounded, through poll) until the socket's kernel state shows
/// what the peer did before the model counts it; a dequeue step waits up to a deadline for what must arrive, and
/// then looks once more without waiting, so anything extra that is already there is checked too.</para>
/// </summary>
internal sealed class NotificationRunner : IDisposable
{
    /// <summary>How long a dequeue step waits for what it is owed.</summary>
    private const int DeadlineMilliseconds = 5000;

    /// <summary>The silence the end of a sequence waits for: entries that would break it are usually queued at once.</summary>
    private const int QuietMilliseconds = 2;

    private readonly CompletionPort _port;
    private readonly NotificationModel _model;
    private readonly Coverage? _coverage;
    private readonly List<(Socket Server, Socket Client)> _sockets = [];
    private int _keys;
    private int _posts;

    private NotificationRunner(CompletionPortBackend backend, int sockets, LoopbackPairs pairs, Coverage? coverage)
    {
        _port = Ports.Create(backend);
        _model = new NotificationModel(sockets, coverage);
        _coverage = coverage;
        try
        {
            for (int i = 0; i < sockets; i++)
            {
                _sockets.Add(pairs.Create());
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="steps"/> and the closing checks; throws a <see cref="ModelViolation"/> naming the step that failed.</summary>
    public static void Check(CompletionPortBackend backend, NotificationStep[] steps)
    {
        using LoopbackPairs pairs = new();
        Check(backend, steps, pairs);
    }

    public static void Check(CompletionPortBackend backend, NotificationStep[] steps, LoopbackPairs pairs, Coverage? coverage = null)
    {
        int sockets = steps.Select(SocketOf).DefaultIfEmpty(0).Max() + 1;
        using NotificationRunner runner = new(backend, sockets, pairs, coverage);
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
        foreach ((Socket server, Socket client) in _sockets)
        {
            server.Dispose();
            client.Dispose();
        }
    }

    private static int SocketOf(NotificationStep step) => step switch
    {
        NotificationStep.Enable s => s.Socket,
        NotificationStep.Disable s => s.Socket,
        NotificationStep.Remove s => s.Socket,
        NotificationStep.DeregisterAndWait s => s.Socket,
        NotificationStep.Close s => s.Socket,
        NotificationStep.PeerSend s => s.Socket,
        NotificationStep.PeerShutdown s => s.Socket,
        NotificationStep.PeerReset s => s.Socket,
        NotificationStep.Drain s => s.Socket,
        _ => 0,
    };

    private void Apply(NotificationStep step)
    {
        switch (step)
        {
            case NotificationStep.Enable(int socket, SocketNotifyEvents filter, SocketNotifyTrigger trigger):
                Key key = new($"s{socket}.{++_keys}"); // A new key each time: only a creating Enable may take it.
                ExpectResult(_model.Enable(socket, key, filter, trigger), Items.Enable(Server(socket), key, filter, trigger));
                break;
            case NotificationStep.Disable(int socket):
                ExpectResult(_model.Disable(socket), Items.Disable(Server(socket)));
                break;
            case NotificationStep.Remove(int socket):
                ExpectResult(_model.Remove(socket), Items.Remove(Server(socket)));
                break;
            case NotificationStep.DeregisterAndWait(int socket):
                SocketNotifyResult expected = _model.Remove(socket, notify: false);
                SocketNotifyResult actual = _port.DeregisterAndWait(Server(socket));
                _coverage?.Count($"DeregisterAndWait -> {actual}");
                if (actual != expected)
                {
                    throw new ModelViolation($"DeregisterAndWait returned {actual}; the model expects {expected}.");
                }

                break;
            case NotificationStep.Close(int socket, bool throughPort) when !_model.IsClosed(socket):
                if (throughPort)
                {
                    _port.CloseSocket(Server(socket));
                }
                else
                {
                    Server(socket).Dispose();
                }

                _model.Closed(socket);
                break;
            case NotificationStep.PeerSend(int socket, int bytes) when !_model.IsClosed(socket) && _model.PeerCanSend(socket):
                Assert.Equal(bytes, Client(socket).Send(new byte[bytes]));
                KernelReadiness.WaitForBytes(Server(socket), _model.Unread(socket) + bytes);
                _model.PeerSent(socket, bytes);
                break;
            case NotificationStep.PeerShutdown(int socket) when !_model.IsClosed(socket) && _model.PeerCanSend(socket):
                Client(socket).Shutdown(SocketShutdown.Send);
                KernelReadiness.WaitFor(Server(socket), KernelReadiness.RdHup, "the peer's FIN");
                _model.PeerShutDown(socket);
                break;
            case NotificationStep.PeerReset(int socket) when !_model.IsClosed(socket) && _model.PeerIsOpen(socket):
                Client(socket).LingerState = new LingerOption(true, 0);
                Client(socket).Close();
                KernelReadiness.WaitFor(Server(socket), KernelReadiness.Hup, "the peer's RST");
                _model.PeerReset(socket);
                break;
            case NotificationStep.Drain(int socket) when !_model.IsClosed(socket):
                Drain(Server(socket));
                _model.Drained(socket);
                break;
            case NotificationStep.Post(int count):
                for (int i = 0; i < count; i++)
                {
                    NotificationModel.Post post = new(++_posts);
                    _port.PostQueuedCompletionStatus(NotificationModel.PostKey, (uint)post.Number, post);
                    _model.Posted(post);
                }

                break;
            case NotificationStep.Dequeue(int entries, int threads):
                if (threads <= 1)
                {
                    Settle(entries);
                }
                else
                {
                    SettleOnThreads(entries, threads);
                }

                break;
        }
    }

    /// <summary>Removes what is left, takes every owed entry, then expects silence and an empty registration table.</summary>
    private void End()
    {
        for (int socket = 0; socket < _sockets.Count; socket++)
        {
            // Also on closed sockets: an item is how the port learns of a plain dispose and drops its registration.
            ExpectResult(_model.Remove(socket), Items.Remove(Server(socket)));
        }

        Settle(16);
        CompletionEntry[] entries = new CompletionEntry[16];
        if (_port.GetQueuedCompletionStatus(entries, out int count, QuietMilliseconds) != CompletionWaitResult.TimedOut)
        {
            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                _model.Observe(entry, 0);
            }

            throw new ModelViolation($"Entries after every registration ended and every post was taken: " +
                $"{string.Join(", ", entries.Take(count).Select(e => NotificationModel.Describe(e)))}.");
        }

        if (_port.RegistrationCount != 0)
        {
            throw new ModelViolation($"{_port.RegistrationCount} registrations left after every socket was removed or closed.");
        }
    }

    private void ExpectResult(SocketNotifyResult expected, SocketNotifyRegistration item)
    {
        SocketNotifyResult actual = _port.Apply(item);
        _coverage?.Count($"item {item.Operation} -> {actual}");
        if (actual != expected)
        {
            throw new ModelViolation($"{item.Operation} returned {actual}; the model expects {expected}.");
        }
    }

    /// <summary>
    /// One thread dequeues until nothing is owed. Queued entries and readiness take turns, and epoll hands out ready
    /// registrations in turn, so everything owed comes within two dequeues per queued entry and per registration.
    /// </summary>
    private void Settle(int size)
    {
        _model.BeginSettle();
        int budget = (2 * (_model.Queued + _model.LiveRegistrations)) + 4;
        CompletionEntry[] entries = new CompletionEntry[size];
        long deadline = Environment.TickCount64 + DeadlineMilliseconds;
        int calls = 0;
        for (List<string> owed = _model.Owed(); owed.Count > 0; owed = _model.Owed())
        {
            if (calls == budget)
            {
                throw new ModelViolation($"Starved: after {calls} dequeues of {size} entries, still owed: {string.Join(", ", owed)}.");
            }

            int remaining = (int)Math.Max(0, deadline - Environment.TickCount64);
            CompletionWaitResult result = _port.GetQueuedCompletionStatus(entries, out int count, remaining);
            if (result != CompletionWaitResult.Success)
            {
                throw new ModelViolation($"{result} after {calls} dequeues ({DeadlineMilliseconds} ms), still owed: {string.Join(", ", owed)}.");
            }

            calls++;
            foreach (CompletionEntry entry in entries.AsSpan(0, count))
            {
                _model.Observe(entry, 0);
            }
        }

        // What is already there must be allowed too (a level registration's next report, say).
        if (_port.GetQueuedCompletionStatus(entries, out int more, 0) == CompletionWaitResult.Success)
        {
            foreach (CompletionEntry entry in entries.AsSpan(0, more))
            {
                _model.Observe(entry, 0);
            }
        }
    }

    /// <summary>Several threads dequeue at once until nothing is owed: each entry reaches one of them, and all are checked.</summary>
    private void SettleOnThreads(int size, int threads)
    {
        Lock gate = new();
        _model.BeginSettle();
        ConcurrentDequeue.Run(
            _port,
            threads,
            size,
            Environment.TickCount64 + DeadlineMilliseconds,
            (entry, thread) =>
            {
                lock (gate)
                {
                    _model.Observe(entry, thread);
                }
            },
            () =>
            {
                lock (gate)
                {
                    return _model.Owed().Count == 0;
                }
            },
            (count, body) =>
            {
                Thread[] dequeuers = [.. Enumerable.Range(0, count).Select(thread => new Thread(() => body(thread)))];
                Array.ForEach(dequeuers, t => t.Start());
                Array.ForEach(dequeuers, t => t.Join());
            });
        if (_model.Owed() is { Count: > 0 } owed)
        {
            throw new ModelViolation($"{threads} threads dequeued for {DeadlineMilliseconds} ms, still owed: {string.Join(", ", owed)}.");
        }
    }

    private static void Drain(Socket socket)
    {
        byte[] buffer = new byte[4096];
        while (socket.Receive(buffer, SocketFlags.None, out SocketError error) > 0 && error == SocketError.Success)
        {
        }
    }

    private Socket Server(int socket) => _sockets[socket].Server;

    private Socket Client(int socket) => _sockets[socket].Client;
}
