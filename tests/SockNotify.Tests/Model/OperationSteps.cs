using CsCheck;

namespace SockNotify.Tests.Model;

/// <summary>
/// One step of an overlapped-operation sequence, and the generator of sequences. A sequence starts with one or two
/// loopback connections whose both ends are associated with the port; <c>AcceptConnect</c> adds more through the
/// port's Accept (and Connect). <c>Connection</c> picks one modulo how many exist; <c>Client</c> picks its connecting
/// end rather than its accepted one. Steps on closed sockets still run: starting an operation then must return
/// OperationAborted and queue nothing.
/// </summary>
internal abstract record OperationStep
{
    private OperationStep()
    {
    }

    /// <summary>A receive into a buffer of <paramref name="Bytes"/> bytes.</summary>
    public sealed record Receive(int Connection, bool Client, int Bytes) : OperationStep;

    /// <summary>A pooled receive (the pool is small: see <see cref="OperationModel.PoolCount"/>).</summary>
    public sealed record ReceivePooled(int Connection, bool Client) : OperationStep;

    /// <summary>Gives back a lent pooled buffer (picked modulo how many are lent); <paramref name="Twice"/> also checks that a second return throws.</summary>
    public sealed record ReturnBuffer(int Lent, bool Twice) : OperationStep;

    /// <summary>A send of <paramref name="Bytes"/> bytes, each send with content of its own.</summary>
    public sealed record Send(int Connection, bool Client, int Bytes) : OperationStep;

    /// <summary>CancelIo for the socket's oldest pending operation (by its context), or for all of them.</summary>
    public sealed record CancelIo(int Connection, bool Client, bool All) : OperationStep;

    public sealed record CloseSocket(int Connection, bool Client) : OperationStep;

    /// <summary>A plain Socket.Dispose: the port's sweep must find it and complete its operations.</summary>
    public sealed record Dispose(int Connection, bool Client) : OperationStep;

    /// <summary>Dissociate, then associate again under a new key.</summary>
    public sealed record Dissociate(int Connection, bool Client) : OperationStep;

    /// <summary>Shuts down the end's sending side (a FIN).</summary>
    public sealed record Shutdown(int Connection, bool Client) : OperationStep;

    /// <summary>Starts an Accept on the listener and connects a new socket, through the port's Connect or a plain connect; waits until it is accepted.</summary>
    public sealed record AcceptConnect(bool PortConnect) : OperationStep;

    /// <summary>Starts an Accept that no connection is coming for (yet).</summary>
    public sealed record Accept() : OperationStep;

    /// <summary>CancelIo on the listener: its pending Accepts.</summary>
    public sealed record CancelAccepts() : OperationStep;

    /// <summary>
    /// Disposes the port with whatever is pending and ends the sequence there: the kernel must let go of everything
    /// before Dispose returns, nothing can be dequeued after, lent buffers stay readable and free the pool when given back.
    /// </summary>
    public sealed record DisposePort() : OperationStep;

    /// <summary>Dequeues on <paramref name="Threads"/> threads until every operation that must have completed has.</summary>
    public sealed record Dequeue(int Entries, int Threads) : OperationStep;

    /// <summary>
    /// Dequeues once (for up to 10 ms) on a new thread, which then exits, as a short-lived or retiring pool thread does;
    /// the operations it submitted to the kernel on behalf of others must not end with it.
    /// </summary>
    public sealed record DequeueOnExitingThread(int Entries) : OperationStep;

    /// <summary>Sequences of 1 to 20 steps; sizes from 1 byte to 64 KiB, so that sends and receives split and merge.</summary>
    /// <param name="exitingThreads">
    /// Whether sequences include <see cref="DequeueOnExitingThread"/>: not on io_uring while the defect it finds stands
    /// (see <see cref="OperationModelTests"/>), or every run would stop at it.
    /// </param>
    public static Gen<OperationStep[]> Sequences(bool exitingThreads) => Step(exitingThreads).Array[1, 20];

    private static Gen<OperationStep> Step(bool exitingThreads)
    {
        Gen<int> connection = Gen.Int[0, 2];
        Gen<int> bytes = Gen.Frequency((3, Gen.Int[1, 16]), (3, Gen.Int[1, 4096]), (2, Gen.Int[1, 65536]));
        Gen<int> entries = Gen.Int[0, 2].Select(size => size switch { 0 => 1, 1 => 3, _ => 16 });
        Gen<int> threads = Gen.Frequency((4, Gen.Const(1)), (1, Gen.Int[2, 3]));
        List<(int, IGen<OperationStep>)> steps =
        [
            (15, Gen.Select(connection, Gen.Bool, bytes, (c, client, b) => (OperationStep)new Receive(c, client, b))),
            (9, Gen.Select(connection, Gen.Bool, (c, client) => (OperationStep)new ReceivePooled(c, client))),
            (6, Gen.Select(Gen.Int[0, 3], Gen.Frequency((5, Gen.Const(false)), (1, Gen.Const(true))), (lent, twice) => (OperationStep)new ReturnBuffer(lent, twice))),
            (18, Gen.Select(connection, Gen.Bool, bytes, (c, client, b) => (OperationStep)new Send(c, client, b))),
            (6, Gen.Select(connection, Gen.Bool, Gen.Bool, (c, client, all) => (OperationStep)new CancelIo(c, client, all))),
            (3, Gen.Select(connection, Gen.Bool, (c, client) => (OperationStep)new CloseSocket(c, client))),
            (3, Gen.Select(connection, Gen.Bool, (c, client) => (OperationStep)new Dispose(c, client))),
            (3, Gen.Select(connection, Gen.Bool, (c, client) => (OperationStep)new Dissociate(c, client))),
            (3, Gen.Select(connection, Gen.Bool, (c, client) => (OperationStep)new Shutdown(c, client))),
            (3, Gen.Bool.Select(portConnect => (OperationStep)new AcceptConnect(portConnect))),
            (3, Gen.Const((OperationStep)new Accept())),
            (3, Gen.Const((OperationStep)new CancelAccepts())),
            (12, Gen.Select(entries, threads, (e, t) => (OperationStep)new Dequeue(e, t))),
            (1, Gen.Const((OperationStep)new DisposePort())),
        ];
        if (exitingThreads)
        {
            steps.Add((3, entries.Select(e => (OperationStep)new DequeueOnExitingThread(e))));
        }

        return Gen.Frequency([.. steps]);
    }
}
