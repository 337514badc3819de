using SockNotify.Tests.Support;
using Xunit.Abstractions;

namespace SockNotify.Tests.Model;

/// <summary>
/// Random sequences of Accept, Connect, Receive, ReceivePooled and ReturnBuffer, Send, CancelIo, CloseSocket, plain
/// disposal, Dissociate, shutdown and dequeues (on one or several threads), with sizes from 1 byte to 64 KiB, each
/// checked against <see cref="OperationModel"/> (see it for what it promises). A failure is shrunk and printed as a
/// test to paste below, marked Skip while the defect stands.
/// </summary>
public class OperationModelTests(ITestOutputHelper output)
{
    [Theory, BothBackends]
    public void Random_sequences_keep_the_operation_contract(CompletionPortBackend backend) =>
        Exploration.Run(
            $"Operations on {backend}",
            OperationStep.Sequences,
            (steps, pairs) => OperationRunner.Check(backend, steps, pairs),
            steps => SequencePrinter.Test(nameof(OperationRunner), backend, steps),
            output.WriteLine);
}
