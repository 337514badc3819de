using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SockNotify.Samples;

/// <summary>
/// The second seed's completion port server (its Figure 2): accept operations posted ahead of time, worker threads
/// (as many as processors) that dequeue completions and switch on the operation's opcode, and a lookaside list of
/// per-operation contexts (the OVERLAPPEDPLUS). Each connection echoes what it receives, and each client checks every
/// byte that comes back, so the run proves that nothing was lost, repeated or reordered.
/// <para>Fixed from the seed: an accepted connection starts with a read (the seed marked the context OP_READ and then
/// called WSASend); a failed completion is handled (the seed's <c>continue</c> leaked the context and the connection);
/// the worker re-posts the accept itself instead of waking a separate accept thread; the listener is associated with
/// the port (the seed never showed it); and shutdown is explicit: the listener's pending accepts end with
/// OperationAborted when it closes, then one exit packet per worker, after which every context must be back in the
/// lookaside list.</para>
/// </summary>
public static class CompletionPortServer
{
    /// <summary>Accepts kept posted on the listener, so that connections never wait for a worker to post one.</summary>
    public const int PostedAccepts = 8;

    /// <summary>How long a worker pauses after a failed accept before posting it again.</summary>
    private static readonly TimeSpan AcceptErrorPause = TimeSpan.FromMilliseconds(50);

    /// <summary>Clients connecting at once.</summary>
    public const int ClientCount = 64;

    /// <summary>The size of each context's buffer (its WSABUF).</summary>
    private const int BufferSize = 4096;

    private static readonly object ExitKey = new();

    /// <summary>Runs the scenario; <paramref name="log"/> receives the transcript.</summary>
    public static ScenarioResult Run(Action<string> log) => Run(log, Environment.ProcessorCount, ClientCount);

    /// <summary>Runs the scenario with the given numbers of workers and clients, on the given backend.</summary>
    public static ScenarioResult Run(Action<string> log, int workerThreads, int clients, CompletionPortBackend backend = CompletionPortBackend.Automatic)
    {
        Stopwatch elapsed = Stopwatch.StartNew();
        using CompletionPort port = new(new CompletionPortOptions { Backend = backend });
        using Socket listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        port.Associate(listener, listener);
        log($"listening on {listener.LocalEndPoint} with the {port.Backend} backend; {workerThreads} workers, {PostedAccepts} accepts posted");

        Server server = new(port, listener);
        for (int i = 0; i < PostedAccepts; i++)
        {
            server.PostAccept(server.Lookaside.Allocate());
        }

        Thread[] workers = [.. Enumerable.Range(0, workerThreads).Select(i => new Thread(server.WorkerThread) { IsBackground = true, Name = $"worker {i}" })];
        Array.ForEach(workers, w => w.Start());

        ConcurrentQueue<string> clientFailures = [];
        Thread[] clientThreads = [.. Enumerable.Range(0, clients).Select(c => CreateEchoClient(listener.LocalEndPoint!, c, clientFailures))];
        bool clientsDone = clientThreads.All(t => t.Join(Common.ScenarioDeadline));

        // Closing the listener (closesocket) ends its posted accepts (OperationAborted); their contexts come back as they
        // complete.
        port.CloseSocket(listener);
        bool contextsBack = SpinWait.SpinUntil(() => server.Lookaside.Outstanding == 0, TimeSpan.FromSeconds(5));
        for (int i = 0; i < workerThreads; i++)
        {
            port.PostQueuedCompletionStatus(ExitKey, 0, null);
        }

        bool workersDone = workers.All(w => w.Join(TimeSpan.FromSeconds(5)));
        string? mismatch = Common.FindPayloadMismatch(server.Echoed, clients, Common.ClientLoopCount);
        string? failure = !clientsDone ? "clients did not finish in time"
            : !clientFailures.IsEmpty ? $"{clientFailures.Count} clients failed; first: {clientFailures.First()}"
            : server.Failure ?? mismatch
            ?? (!contextsBack ? $"{server.Lookaside.Outstanding} contexts never came back to the lookaside list"
            : !workersDone ? "workers did not exit" : null);
        log(failure ?? $"{clients} clients x {Common.ClientLoopCount} payloads echoed and checked; {server.Lookaside.Created} contexts made, all back in the lookaside list");
        return new ScenarioResult("iocp", failure is null, server.Echoed.Count, elapsed.Elapsed,
            failure ?? $"{clients} clients, every echoed byte verified, {server.Lookaside.Created} contexts recycled");
    }

    /// <summary>A client that sends its payloads one at a time and checks that each comes back unchanged.</summary>
    private static Thread CreateEchoClient(EndPoint server, int client, ConcurrentQueue<string> failures)
    {
        Thread thread = new(() =>
        {
            try
            {
                using Socket socket = new(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                socket.ReceiveTimeout = (int)Common.ScenarioDeadline.TotalMilliseconds;
                socket.Connect(server);
                byte[] payload = new byte[Common.PayloadSize];
                byte[] echo = new byte[Common.PayloadSize];
                for (int index = 0; index < Common.ClientLoopCount; index++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(payload, Common.Payload(client, index));
                    socket.Send(payload);
                    for (int read = 0; read < echo.Length;)
                    {
                        int got = socket.Receive(echo, read, echo.Length - read, SocketFlags.None);
                        read += got > 0 ? got : throw new InvalidDataException("the server closed the connection early");
                    }

                    if (!echo.AsSpan().SequenceEqual(payload))
                    {
                        throw new InvalidDataException($"payload {index} came back as {Convert.ToHexString(echo)}");
                    }
                }

                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is SocketException or InvalidDataException)
            {
                failures.Enqueue($"client {client}: {e.Message}");
            }
        })
        { IsBackground = true, Name = $"client {client}" };
        thread.Start();
        return thread;
    }

    /// <summary>OP_READ, OP_WRITE, OP_ACCEPT.</summary>
    private enum OpCode
    {
        Read,
        Write,
        Accept,
    }

    /// <summary>OVERLAPPEDPLUS: the per-operation context, with its opcode, socket and buffer (WSABUF).</summary>
    private sealed class OverlappedPlus
    {
        public OpCode OpCode { get; set; }

        public Socket? Socket { get; set; }

        public byte[] Buffer { get; } = new byte[BufferSize];
    }

    /// <summary>The lookaside list of free contexts: AllocateOverlappedPlus and FreeOverlappedPlus.</summary>
    private sealed class LookasideList
    {
        private readonly ConcurrentStack<OverlappedPlus> _free = [];
        private int _created;
        private int _outstanding;

        public int Created => Volatile.Read(ref _created);

        public int Outstanding => Volatile.Read(ref _outstanding);

        public OverlappedPlus Allocate()
        {
            Interlocked.Increment(ref _outstanding);
            if (_free.TryPop(out OverlappedPlus? context))
            {
                return context;
            }

            Interlocked.Increment(ref _created);
            return new OverlappedPlus();
        }

        public void Free(OverlappedPlus context)
        {
            context.Socket = null;
            _free.Push(context);
            Interlocked.Decrement(ref _outstanding);
        }
    }

    private sealed class Server(CompletionPort port, Socket listener)
    {
        public LookasideList Lookaside { get; } = new();

        /// <summary>Every payload the server echoed, for the exactly-once check.</summary>
        public ConcurrentBag<uint> Echoed { get; } = [];

        public string? Failure { get; private set; }

        /// <summary>The stream bytes of each connection not yet a whole payload, by connection.</summary>
        private readonly ConcurrentDictionary<Socket, byte[]> _partial = [];

        public void PostAccept(OverlappedPlus context)
        {
            context.OpCode = OpCode.Accept;
            if (port.Accept(listener, context) != SocketError.IOPending)
            {
                Lookaside.Free(context); // The listener is closed: no completion will come, so the context is free now.
            }
        }

        /// <summary>Figure 2: dequeue one completion at a time and switch on its opcode.</summary>
        public void WorkerThread()
        {
            CompletionEntry[] entries = new CompletionEntry[1];
            while (true)
            {
                CompletionWaitResult result = port.GetQueuedCompletionStatus(entries, out _, Common.MaxTimeout);
                if (result == CompletionWaitResult.TimedOut)
                {
                    continue;
                }

                if (result != CompletionWaitResult.Success || entries[0].CompletionKey == ExitKey)
                {
                    return;
                }

                Handle(entries[0]);
            }
        }

        private void Handle(in CompletionEntry entry)
        {
            OverlappedPlus overlapPlus = (OverlappedPlus)entry.Context!;
            switch (overlapPlus.OpCode)
            {
                case OpCode.Accept:
                    if (entry.SocketError == SocketError.OperationAborted)
                    {
                        Lookaside.Free(overlapPlus); // The listener closed: stop accepting.
                        return;
                    }

                    if (entry.SocketError != SocketError.Success)
                    {
                        // Out of descriptors or memory: the connection waits in the listener's backlog, so an accept
                        // posted at once would fail at once, again and again. Pause this worker, then post it again.
                        Thread.Sleep(AcceptErrorPause);
                        PostAccept(overlapPlus);
                        return;
                    }

                    // Add the client to the completion port and start reading with a new context; post the next accept
                    // with this one.
                    Socket client = entry.AcceptSocket!;
                    port.Associate(client, client);
                    OverlappedPlus newOverlapPlus = Lookaside.Allocate();
                    newOverlapPlus.Socket = client;
                    PostRead(newOverlapPlus);
                    PostAccept(overlapPlus);
                    break;

                case OpCode.Read:
                    if (entry.SocketError != SocketError.Success || entry.BytesTransferred == 0)
                    {
                        Close(overlapPlus); // End of stream or a failed connection.
                        return;
                    }

                    Record(overlapPlus.Socket!, overlapPlus.Buffer.AsSpan(0, (int)entry.BytesTransferred));
                    overlapPlus.OpCode = OpCode.Write;
                    if (port.Send(overlapPlus.Socket!, overlapPlus.Buffer.AsMemory(0, (int)entry.BytesTransferred), SocketFlags.None, overlapPlus) != SocketError.IOPending)
                    {
                        Close(overlapPlus);
                    }

                    break;

                case OpCode.Write:
                    if (entry.SocketError != SocketError.Success)
                    {
                        Close(overlapPlus);
                        return;
                    }

                    PostRead(overlapPlus); // Repost the read, reusing the same buffer.
                    break;
            }
        }

        private void PostRead(OverlappedPlus context)
        {
            context.OpCode = OpCode.Read;
            if (port.Receive(context.Socket!, context.Buffer, SocketFlags.None, context) != SocketError.IOPending)
            {
                Close(context);
            }
        }

        private void Close(OverlappedPlus context)
        {
            if (_partial.TryRemove(context.Socket!, out byte[]? rest) && rest.Length > 0)
            {
                Failure ??= $"a connection ended with {rest.Length} stray bytes";
            }

            port.CloseSocket(context.Socket!); // closesocket: the peer sees the end at once.
            Lookaside.Free(context);
        }

        /// <summary>Splits the connection's stream into payloads for the exactly-once check.</summary>
        private void Record(Socket socket, ReadOnlySpan<byte> received)
        {
            byte[] stream = [.. _partial.GetValueOrDefault(socket, []), .. received];
            int whole = stream.Length - (stream.Length % Common.PayloadSize);
            foreach (uint payload in Common.Payloads(stream.AsMemory(0, whole)))
            {
                Echoed.Add(payload);
            }

            _partial[socket] = stream[whole..];
        }
    }
}
