using System.Net.Sockets;

namespace SockNotify.Tests.Model;

/// <summary>
/// The reference model of overlapped operations (README, "Overlapped operations"): loopback connections whose ends are
/// associated with one port, a listener, the operations started on them, and the byte streams between the ends. It
/// performs no I/O: the runner tells it what it started and did, and shows it every completion.
/// <para><b>What it promises.</b> A start on an open associated socket returns IOPending and that operation completes
/// exactly once, carrying its context and the key its socket had when it started (nothing completes twice or unknown).
/// A start on a closed socket returns OperationAborted and queues nothing. Each side of a socket serves its operations
/// one at a time in start order, so the bytes of a direction are the sends' bytes, each cut to the count its
/// completion reports, in start order, and the receives (in start order) get a prefix of them, all of them when the
/// connection ends cleanly. A receive gets 1 to its size bytes, or 0 only once the peer sent its FIN; a pooled receive
/// gets them in a pool buffer given back exactly once (a second return throws), and no other completion holds a buffer.
/// A cancelled, dissociated or closed operation completes with OperationAborted (and no bytes for a receive) or with a
/// result it already had. Errors and short sends only once the connection was broken (an end closed) or the sender shut
/// down. Accepts are served in start order. At the end, every operation has completed, the port holds none, no buffer stays lent and the pool is freed.
/// A port disposed with operations pending has let the kernel go of everything when Dispose returns, lets no one
/// dequeue, and leaves lent buffers readable until they are given back, the last return freeing the pool.</para>
/// <para><b>What must complete</b> before a dequeue step ends (<see cref="MustComplete"/>): cancelled ones and those of
/// closed sockets; the first receive of a side when bytes sent to it are unreceived or a send that is not cancelled is
/// on its way, or its peer ended its sending, and for a pooled receive a buffer is free; sends while no more than
/// <see cref="InFlightBound"/> bytes of their direction are unreceived (the sockets' buffers hold far more), or once
/// the receiving end is closed; Connects; and as many pending Accepts, oldest first, as connections wait.</para>
/// </summary>
internal sealed class OperationModel
{
    /// <summary>A small pool, so that pooled receives wait for buffers and take them back in turn.</summary>
    public const int PoolCount = 2;

    /// <summary>Smaller than many sends, so that one send's bytes arrive in several pooled receives.</summary>
    public const int PoolSize = 1024;

    /// <summary>Unreceived bytes of a direction under which every send must complete (see <see cref="LoopbackPairs.BufferBytes"/>).</summary>
    public const int InFlightBound = 64 * 1024;

    private readonly List<Operation> _operations = [];
    private readonly Coverage? _coverage;
    private readonly List<Operation> _accepts = [];
    private readonly List<object> _connectedClients = [];
    private int _acceptedClients;

    public OperationModel(Coverage? coverage = null) => _coverage = coverage;

    public List<Connection> Connections { get; } = [];

    public List<CompletionEntry> Lent { get; } = [];

    public object ListenerKey { get; } = new Support.Key("listener");

    public bool UsedPool { get; private set; }

    public Connection AddConnection(object serverKey, object clientKey)
    {
        Connection connection = new(Connections.Count, serverKey, clientKey) { Model = this };
        Connections.Add(connection);
        return connection;
    }

    /// <summary>Records a started operation: the runner checks <paramref name="started"/> against <see cref="ExpectedStart"/> first.</summary>
    public Operation Started(OperationKind kind, End? end, int size, byte[]? data = null, object? key = null)
    {
        Operation operation = new(_operations.Count + 1, kind, end, key ?? end?.Key ?? ListenerKey, size, data);
        _operations.Add(operation);
        if (kind == OperationKind.ReceivePooled)
        {
            UsedPool = true;
        }

        if (end is not null)
        {
            (operation.IsReceive ? end.Receives : end.Sends).Add(operation);
        }
        else if (kind == OperationKind.Accept)
        {
            _accepts.Add(operation);
        }

        return operation;
    }

    /// <summary>Forgets an operation whose start returned something else than IOPending: nothing will complete.</summary>
    public void NotStarted(Operation operation)
    {
        _operations.Remove(operation);
        _accepts.Remove(operation);
        operation.End?.Receives.Remove(operation);
        operation.End?.Sends.Remove(operation);
    }

    /// <summary>What a start must return: IOPending on an open socket, OperationAborted on a closed one.</summary>
    public static SocketError ExpectedStart(End end) => end.Closed ? SocketError.OperationAborted : SocketError.IOPending;

    /// <summary>A connection reached the listener (in this order).</summary>
    public void ClientConnected(object client) => _connectedClients.Add(client);

    public IEnumerable<Operation> Pending => _operations.Where(o => !o.Done);

    public IEnumerable<Operation> PendingAccepts => _accepts.Where(o => !o.Done);

    /// <summary>Marks operations as asked to end: they must complete now, aborted or with what they had.</summary>
    public static void CancelRequested(IEnumerable<Operation> operations)
    {
        foreach (Operation operation in operations)
        {
            operation.CancelRequested = true;
        }
    }

    /// <summary>The end was closed (or disposed): its operations end, and the connection is broken (the peer may get a RST).</summary>
    public static void Closed(End end)
    {
        end.Closed = true;
        end.Connection.Broken = true;
        CancelRequested(end.Pending);
    }

    /// <summary>Checks one completion and records its result. Returns the operation, for the runner's follow-up (an accept).</summary>
    public Operation Observe(in CompletionEntry entry)
    {
        if (entry.Context is not Operation operation || !_operations.Contains(operation))
        {
            throw new ModelViolation($"A completion with an unknown context: {Describe(entry)}.");
        }

        if (operation.Done)
        {
            throw new ModelViolation($"{operation} completed twice: {Describe(entry)}.");
        }

        if (!ReferenceEquals(entry.CompletionKey, operation.Key))
        {
            throw new ModelViolation($"{operation} completed with key {entry.CompletionKey}, not {operation.Key}, the key its socket had when it started.");
        }

        operation.Done = true;
        operation.Error = entry.SocketError;
        operation.Transferred = (int)entry.BytesTransferred;
        _coverage?.Count($"completion {operation.Kind} {entry.SocketError}" +
            (operation.CancelRequested ? " after a cancel" : "") +
            (operation.Size > 0 && operation.Transferred > 0 && operation.Transferred < operation.Size ? ", part of its size" : "") +
            (operation.IsReceive && entry.SocketError == SocketError.Success && operation.Transferred == 0 ? ", end of stream" : ""));
        operation.End?.Receives.Remove(operation);
        operation.End?.Sends.Remove(operation);
        bool broken = operation.End is { } end && (end.Connection.Broken || (operation.IsSend && end.ShutDown));
        bool aborted = entry.SocketError == SocketError.OperationAborted;
        if (aborted && !operation.CancelRequested)
        {
            throw new ModelViolation($"{operation} completed with OperationAborted though nothing cancelled it.");
        }

        if (!aborted && entry.SocketError != SocketError.Success && !broken)
        {
            throw new ModelViolation($"{operation} failed with {entry.SocketError} on a healthy connection.");
        }

        // A pooled buffer is lent with, and only with, a pooled receive's bytes: any other completion holding one leaks it.
        bool mayHoldBuffer = operation.Kind == OperationKind.ReceivePooled && entry.SocketError == SocketError.Success && entry.BytesTransferred > 0;
        if (entry.PooledBuffer is not null && !mayHoldBuffer)
        {
            throw new ModelViolation($"{operation} holds a pooled buffer with {entry.SocketError} and {entry.BytesTransferred} bytes: no one will give it back.");
        }

        switch (operation.Kind)
        {
            case OperationKind.Receive or OperationKind.ReceivePooled:
                ObserveReceive(operation, entry, aborted);
                break;
            case OperationKind.Send:
                if (operation.Transferred > operation.Size || (entry.SocketError == SocketError.Success && operation.Transferred < operation.Size && !broken && !operation.CancelRequested))
                {
                    throw new ModelViolation($"{operation} reports {operation.Transferred} bytes sent on a healthy connection.");
                }

                break;
            case OperationKind.Accept:
                if ((entry.AcceptSocket is null) != (entry.SocketError != SocketError.Success))
                {
                    throw new ModelViolation($"{operation} completed with {entry.SocketError} and {(entry.AcceptSocket is null ? "no" : "a")} socket.");
                }

                if (entry.AcceptSocket is not null)
                {
                    _acceptedClients++;
                }

                break;
            case OperationKind.Connect:
                if (entry.SocketError != SocketError.Success)
                {
                    throw new ModelViolation($"{operation} to a listening socket failed with {entry.SocketError}.");
                }

                break;
        }

        return operation;
    }

    /// <summary>The operations that must complete before a dequeue step ends; empty when none.</summary>
    public List<Operation> MustComplete()
    {
        List<Operation> must = [.. Pending.Where(o => o.CancelRequested || o.Kind == OperationKind.Connect)];
        foreach (Connection connection in Connections)
        {
            foreach (End end in (End[])[connection.Server, connection.Client])
            {
                if (end.Receives.FirstOrDefault(o => !o.CancelRequested) is { } receive && ReceiveMustComplete(end, receive))
                {
                    must.Add(receive);
                }

                must.AddRange(end.Sends.Where(o => !o.CancelRequested && SendMustComplete(end, o)));
            }
        }

        int waitingConnections = _connectedClients.Count - _acceptedClients;
        must.AddRange(PendingAccepts.Where(o => !o.CancelRequested).Take(Math.Max(0, waitingConnections)));
        return [.. must.Distinct()];
    }

    /// <summary>Bytes of <paramref name="sender"/>'s completed sends its peer has not received.</summary>
    public static long Unreceived(End sender) =>
        sender.AllSends.Where(o => o.Done).Sum(o => (long)o.Transferred) - sender.Peer.AllReceives.Where(o => o.Done).Sum(o => (long)o.Transferred);

    /// <summary>
    /// End-of-sequence checks of what has completed: each direction's received bytes are its sent bytes (a prefix when
    /// the connection broke or was shut down before everything was read), and Accepts took connections in order.
    /// </summary>
    /// <param name="prefixOnly">The port was disposed with bytes on their way: every direction may have stopped short.</param>
    public void CheckStreamsAndAccepts(bool prefixOnly = false)
    {
        foreach (Connection connection in Connections)
        {
            foreach (End sender in (End[])[connection.Server, connection.Client])
            {
                byte[] sent = [.. sender.AllSends.Where(o => o.Done).SelectMany(o => o.Data!.Take(o.Transferred))];
                byte[] received = [.. sender.Peer.AllReceives.Where(o => o.Done && o.Error == SocketError.Success).SelectMany(o => o.Received!)];
                int common = sent.AsSpan().CommonPrefixLength(received);
                if (common < received.Length)
                {
                    throw new ModelViolation($"{sender.Peer.Name} received bytes that {sender.Name} did not send in that order: " +
                        $"{received.Length} received, {sent.Length} sent, first difference at byte {common}.");
                }

                if (!connection.Broken && !prefixOnly && received.Length != sent.Length)
                {
                    throw new ModelViolation($"{sender.Peer.Name} received {received.Length} of the {sent.Length} bytes {sender.Name} sent.");
                }
            }
        }

        List<object> acceptedInStartOrder = [.. _accepts.Where(o => o.Done && o.Error == SocketError.Success).Select(o => o.AcceptedClient!)];
        if (!acceptedInStartOrder.SequenceEqual(_connectedClients.Take(acceptedInStartOrder.Count)))
        {
            throw new ModelViolation("Accepts did not take the connections in the order they were started and the connections arrived.");
        }
    }

    public static string Describe(in CompletionEntry entry) =>
        $"[{entry.CompletionKey}: context {entry.Context}, {entry.BytesTransferred} bytes, {entry.SocketError}]";

    private static bool ReceiveMustComplete(End end, Operation receive)
    {
        End sender = end.Peer;
        bool bytesComing = Unreceived(sender) > 0 || sender.Sends.Any(o => !o.CancelRequested);
        bool senderEnded = sender.ShutDown || sender.Closed;
        bool bufferFree = receive.Kind != OperationKind.ReceivePooled || end.Model.Lent.Count < PoolCount;
        return (bytesComing || senderEnded) && bufferFree && !end.Closed;
    }

    private static bool SendMustComplete(End end, Operation send)
    {
        if (end.Peer.Closed)
        {
            return true;
        }

        long unreceivedThrough = Unreceived(end) + end.Sends.TakeWhile(o => o != send).Sum(o => (long)o.Size) + send.Size;
        return unreceivedThrough <= InFlightBound;
    }

    private void ObserveReceive(Operation operation, in CompletionEntry entry, bool aborted)
    {
        End end = operation.End!;
        if (aborted && operation.Transferred != 0)
        {
            throw new ModelViolation($"{operation} was aborted with {operation.Transferred} bytes: they are lost to the stream.");
        }

        if (entry.SocketError != SocketError.Success)
        {
            return;
        }

        int capacity = operation.Kind == OperationKind.ReceivePooled ? PoolSize : operation.Size;
        if (operation.Transferred > capacity)
        {
            throw new ModelViolation($"{operation} reports {operation.Transferred} bytes into {capacity}.");
        }

        if (operation.Transferred == 0 && !end.Peer.ShutDown && !end.Peer.Closed && !end.Connection.Broken)
        {
            throw new ModelViolation($"{operation} reports the end of the stream, but {end.Peer.Name} never ended it.");
        }

        if (operation.Kind == OperationKind.ReceivePooled)
        {
            if (entry.PooledData.Length != operation.Transferred)
            {
                throw new ModelViolation($"{operation} carries {entry.PooledData.Length} pooled bytes for {operation.Transferred} transferred.");
            }

            operation.Received = entry.PooledData.ToArray();
            if (operation.Transferred > 0)
            {
                Lent.Add(entry);
            }
        }
        else
        {
            operation.Received = operation.Data.AsSpan(0, operation.Transferred).ToArray();
        }
    }

    public enum OperationKind
    {
        Receive,
        ReceivePooled,
        Send,
        Accept,
        Connect,
    }

    /// <summary>One started operation; it is also the operation's context object.</summary>
    public sealed class Operation(int id, OperationKind kind, End? end, object key, int size, byte[]? data)
    {
        public int Id { get; } = id;

        public OperationKind Kind { get; } = kind;

        /// <summary>The end it runs on; null for an Accept (the listener's).</summary>
        public End? End { get; } = end;

        public object Key { get; } = key;

        public int Size { get; } = size;

        /// <summary>A send's bytes, or a receive's buffer.</summary>
        public byte[]? Data { get; } = data;

        public bool IsReceive => Kind is OperationKind.Receive or OperationKind.ReceivePooled;

        public bool IsSend => Kind == OperationKind.Send;

        public bool CancelRequested { get; set; }

        public bool Done { get; set; }

        public SocketError Error { get; set; }

        public int Transferred { get; set; }

        /// <summary>A completed receive's bytes, copied when it was dequeued.</summary>
        public byte[]? Received { get; set; }

        /// <summary>For an Accept, which connecting socket it got.</summary>
        public object? AcceptedClient { get; set; }

        public override string ToString() => $"#{Id} {Kind}{(End is null ? "" : $" on {End.Name}")}{(Size > 0 ? $" ({Size} bytes)" : "")}";
    }

    /// <summary>One end of a connection.</summary>
    public sealed class End
    {
        public End(Connection connection, string name, object key)
        {
            Connection = connection;
            Name = name;
            Key = key;
        }

        public Connection Connection { get; }

        public string Name { get; }

        /// <summary>The key of its current association.</summary>
        public object Key { get; set; }

        public End Peer => ReferenceEquals(this, Connection.Server) ? Connection.Client : Connection.Server;

        public OperationModel Model => Connection.Model!;

        public bool Closed { get; set; }

        public bool ShutDown { get; set; }

        /// <summary>Pending operations of each side, in start order.</summary>
        public List<Operation> Receives { get; } = [];

        public List<Operation> Sends { get; } = [];

        public IEnumerable<Operation> Pending => Receives.Concat(Sends);

        public List<Operation> AllReceives => [.. Model._operations.Where(o => o.End == this && o.IsReceive)];

        public List<Operation> AllSends => [.. Model._operations.Where(o => o.End == this && o.IsSend)];
    }

    public sealed class Connection
    {
        public Connection(int index, object serverKey, object clientKey)
        {
            Server = new End(this, $"connection {index} accepted end", serverKey);
            Client = new End(this, $"connection {index} connecting end", clientKey);
        }

        public End Server { get; }

        public End Client { get; }

        /// <summary>An end was closed: bytes may be lost to a RST, and errors are allowed.</summary>
        public bool Broken { get; set; }

        public OperationModel? Model { get; set; }
    }
}
