using System.Net;

namespace SockNotify.Cli.Soak;

/// <summary>
/// One of the soak's clients: one connection at a time, each drawn at random (0 to 4 messages of 1 B to 64 KiB,
/// log-uniform so that small and large both occur; ended by half-close, close or reset), then the next, until told to
/// stop. Its random choices come from the seed and its index, so a run's plans repeat with the same seed.
/// </summary>
internal sealed class SoakClient(SoakShared shared, int index, int seed)
{
    private const int MaxMessages = 4;
    private const int MaxMessageBits = 16; // 64 KiB.

    // Not HashCode.Combine: it is randomized per process, and a seed must repeat its plans.
    private readonly Random _random = new((int)SoakStream.Key(seed, index, connection: -1));

    /// <summary>Runs connections until the soak stops (the current one finishes) or aborts (it is dropped).</summary>
    public async Task RunAsync()
    {
        for (long number = 0; !shared.Stopping.IsCancellationRequested && !shared.Abort.IsCancellationRequested; number++)
        {
            SoakConnectionPlan plan = Draw(number);
            if (!await SoakConnection.RunAsync(shared, plan, $"client {index} connection {number}").ConfigureAwait(false))
            {
                return; // The failure is in the tally, which ends the soak.
            }
        }
    }

    private SoakConnectionPlan Draw(long number)
    {
        int[] messages = new int[_random.Next(MaxMessages + 1)];
        for (int i = 0; i < messages.Length; i++)
        {
            messages[i] = (int)Math.Round(Math.Pow(2, _random.NextDouble() * MaxMessageBits));
        }

        SoakEnding ending = (SoakEnding)_random.Next(3);
        long total = messages.Sum(m => (long)m);
        long resetAt = ending == SoakEnding.Reset ? _random.NextInt64(total + 1) : total;
        return new SoakConnectionPlan(number, SoakStream.Key(seed, index, number), messages, ending, resetAt, _random.Next());
    }
}

/// <summary>What every client of one soak shares.</summary>
/// <param name="Server">The echo server.</param>
/// <param name="Tally">The counts, and the first failure.</param>
/// <param name="AwaitingAccept">Places for connections the server may not have accepted yet (see <see cref="SoakRunner"/>).</param>
/// <param name="Stopping">Set when the duration is over: connections finish without their pauses, and no new one starts.</param>
/// <param name="Abort">Set after a failure: connections are dropped, and their errors are not reported.</param>
internal sealed record SoakShared(IPEndPoint Server, SoakTally Tally, SemaphoreSlim AwaitingAccept, CancellationToken Stopping, CancellationToken Abort);
