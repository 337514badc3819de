using SockNotify.Tests.Support;
using Xunit.Abstractions;

namespace SockNotify.Tests.Model;

/// <summary>
/// Random sequences of Accept, Connect, Receive, ReceivePooled and ReturnBuffer, Send, CancelIo, CloseSocket, plain
/// disposal, Dissociate, shutdown and dequeues (on one or several threads, or on a thread that then exits), with sizes
/// from 1 byte to 64 KiB, each checked against <see cref="OperationModel"/> (see it for what it promises). A failure is
/// shrunk and printed as a test to paste below, marked Skip while the defect stands.
/// </summary>
public class OperationModelTests(ITestOutputHelper output)
{
    [Theory, BothBackends]
    public void Random_sequences_keep_the_operation_contract(CompletionPortBackend backend)
    {
        Coverage coverage = new();
        Exploration.Run(
            $"Operations on {backend}",
            OperationStep.Sequences(exitingThreads: true),
            (steps, pairs) => OperationRunner.Check(backend, steps, pairs, coverage),
            steps => SequencePrinter.Test(nameof(OperationRunner), backend, steps),
            output.WriteLine);
        output.WriteLine("What the sequences did, by kind:\n" + coverage);
    }

    /// <summary>
    /// Found by the model (seed 0000001dis71, sequence 14, shrunk by CsCheck from 18 steps to these 3). A receive
    /// started while no thread waits is submitted to the ring by the next thread that dequeues; the kernel ties an
    /// io_uring request to the task that submitted it and cancels it when that task exits, so when that thread ends the
    /// receive completed with OperationAborted though nothing cancelled it (now the engine submits it again). Expected:
    /// the receive completes with the peer's 7 bytes.
    /// </summary>
    [Fact]
    public void A_receive_submitted_by_a_dequeuing_thread_survives_the_threads_exit() => OperationRunner.Check(CompletionPortBackend.IoUring,
        [
            new OperationStep.Receive(Connection: 0, Client: false, Bytes: 14),
            new OperationStep.DequeueOnExitingThread(Entries: 3),
            new OperationStep.Send(Connection: 0, Client: true, Bytes: 7),
        ]);
}
