using SockNotify.Tests.Support;
using Xunit.Abstractions;

namespace SockNotify.Tests.Model;

/// <summary>
/// Random sequences of registration items, socket closes, peer sends, FINs and RSTs, reads, posts and dequeues (on one
/// or several threads), each checked step by step against <see cref="NotificationModel"/> (see it for what may and
/// must arrive). A failure is shrunk and printed as a test to paste below, marked Skip while the defect stands.
/// </summary>
public class NotificationModelTests(ITestOutputHelper output)
{
    [Theory, BothBackends]
    public void Random_sequences_keep_the_notification_contract(CompletionPortBackend backend)
    {
        Coverage coverage = new();
        Exploration.Run(
            $"Notifications on {backend}",
            NotificationStep.Sequences,
            (steps, pairs) => NotificationRunner.Check(backend, steps, pairs, coverage),
            steps => SequencePrinter.Test(nameof(NotificationRunner), backend, steps),
            output.WriteLine);
        output.WriteLine("What the sequences did, by kind:\n" + coverage);
    }
}
