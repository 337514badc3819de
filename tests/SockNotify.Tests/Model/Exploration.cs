using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using CsCheck;

namespace SockNotify.Tests.Model;

/// <summary>
/// Runs a model over many generated step sequences and, when one fails, shrinks it with CsCheck and prints the
/// smallest failing sequence as a test to paste.
/// <para><b>Deterministic by default.</b> CsCheck's <c>Sample</c> takes a seed only for its first iteration and draws
/// the rest from per-thread generators, so this runner draws the sequences itself: all of them from one PCG stream
/// started at <see cref="Seed"/>, exactly as CsCheck's single-threaded loop would, so that the N-th sequence is the same
/// on every run and the seed printed for a failing sequence reproduces that sequence first. The sequences then run on a
/// few worker threads (they spend most of their time in the kernel).</para>
/// <para><b>Shrinking.</b> The first failing sequence (lowest index) is handed to CsCheck's <c>Sample</c> with its
/// own seed and a time budget: CsCheck replays it, then searches for smaller failing sequences. The smallest failure
/// seen (fewest steps, then shortest text) is then polished by deleting single steps and simplifying arguments while
/// it still fails, and printed with <see cref="SequencePrinter"/>. A failure that depends on timing may not fail
/// again: the message says how often the printed sequence failed in 3 reruns.</para>
/// <para><b>Switches.</b> <c>SOCKNOTIFY_MODEL_SEED</c>: a CsCheck seed string to start from, or <c>random</c> for a
/// fresh one (printed); <c>SOCKNOTIFY_MODEL_ITERATIONS</c>: sequences per run (default 10,000);
/// <c>SOCKNOTIFY_MODEL_SHRINK_SECONDS</c>: how long a failure is shrunk (default 60).</para>
/// </summary>
internal static class Exploration
{
    /// <summary>The seed CI runs with: <c>new PCG(1, 20260612)</c>.</summary>
    public const string DefaultSeed = "0000001dis71";

    public const int DefaultIterations = 10_000;

    /// <summary>Sequences in flight at once: they mostly wait on the kernel, so a few more than the cores.</summary>
    public static int Workers => Math.Max(2, Environment.ProcessorCount * 2);

    public static string Seed
    {
        get
        {
            string? configured = Environment.GetEnvironmentVariable("SOCKNOTIFY_MODEL_SEED");
            if (string.IsNullOrWhiteSpace(configured))
            {
                return DefaultSeed;
            }

            return configured.Trim() == "random"
                ? new PCG((uint)Random.Shared.Next(1, int.MaxValue), (ulong)Random.Shared.NextInt64()).ToString()
                : configured.Trim();
        }
    }

    public static int Iterations => ReadInt("SOCKNOTIFY_MODEL_ITERATIONS", DefaultIterations);

    private static int ShrinkSeconds => ReadInt("SOCKNOTIFY_MODEL_SHRINK_SECONDS", 60);

    /// <summary>
    /// Runs <paramref name="iterations"/> sequences drawn from <paramref name="sequences"/> through
    /// <paramref name="check"/>; on a failure, throws a <see cref="ModelViolation"/> holding the shrunk sequence as a test.
    /// </summary>
    /// <param name="name">What is explored, for the log.</param>
    /// <param name="sequences">The generator of step sequences.</param>
    /// <param name="check">Runs one sequence against the port and the model, throwing on a violation.</param>
    /// <param name="printTest">The failing sequence as a test method.</param>
    /// <param name="log">Where the summary goes.</param>
    public static void Run<TStep>(
        string name, Gen<TStep[]> sequences, Action<TStep[], LoopbackPairs> check, Func<TStep[], string> printTest, Action<string> log,
        string? seed = null, int? iterations = null)
        where TStep : notnull
    {
        seed ??= Seed;
        int count = iterations ?? Iterations;
        Stopwatch clock = Stopwatch.StartNew();
        (string Seed, TStep[] Steps)[] drawn = Draw(sequences, seed, count);
        using PairsPool pool = new();
        (int Index, Exception Error)? failure = RunAll(drawn, check, pool);
        TimeSpan explored = clock.Elapsed;
        if (failure is null)
        {
            log($"{name}: {count:N0} sequences from seed {seed} passed in {explored.TotalSeconds:F1} s " +
                $"({drawn.Sum(d => d.Steps.Length):N0} steps, {Workers} workers).");
            return;
        }

        (int index, Exception error) = failure.Value;
        string failingSeed = drawn[index].Seed;
        log($"{name}: sequence {index} (seed {failingSeed}) failed after {explored.TotalSeconds:F1} s: {error.Message}");
        (TStep[] smallest, Exception smallestError, string shrinkReport) = Shrink(sequences, drawn[index].Steps, error, failingSeed, check, pool);
        int reproduced = Enumerable.Range(0, 3).Count(_ => Fails(smallest, check, pool, out Exception? _));
        throw new ModelViolation(
            $"{name}: sequence {index} of seed {seed} failed (its own seed: {failingSeed}; rerun with SOCKNOTIFY_MODEL_SEED={failingSeed}).\n" +
            $"First failure: {error.Message}\n" +
            $"Shrunk to {smallest.Length} steps ({shrinkReport}); it failed again in {reproduced} of 3 reruns with:\n" +
            $"{smallestError.GetType().Name}: {smallestError.Message}\n\n" +
            "Ready to paste:\n\n" + printTest(smallest) + "\n" + smallestError);
    }

    /// <summary>The sequences CsCheck's single-threaded loop would draw from <paramref name="seed"/>, each with its seed.</summary>
    private static (string Seed, TStep[] Steps)[] Draw<TStep>(Gen<TStep[]> sequences, string seed, int count)
    {
        PCG random = PCG.Parse(seed);
        (string, TStep[])[] drawn = new (string, TStep[])[count];
        for (int i = 0; i < count; i++)
        {
            ulong state = random.State;
            drawn[i] = (random.ToString(state), sequences.Generate(random, null, out _));
        }

        return drawn;
    }

    /// <summary>Runs every sequence on <see cref="Workers"/> threads; stops handing out work at the first failure.</summary>
    private static (int Index, Exception Error)? RunAll<TStep>((string Seed, TStep[] Steps)[] drawn, Action<TStep[], LoopbackPairs> check, PairsPool pool)
    {
        int next = -1;
        ConcurrentBag<(int Index, Exception Error)> failures = [];
        Thread[] workers = Enumerable.Range(0, Workers).Select(_ => new Thread(() =>
        {
            LoopbackPairs pairs = pool.Rent();
            try
            {
                int index;
                while (failures.IsEmpty && (index = Interlocked.Increment(ref next)) < drawn.Length)
                {
                    try
                    {
                        check(drawn[index].Steps, pairs);
                    }
                    catch (Exception error)
                    {
                        failures.Add((index, error));
                    }
                }
            }
            finally
            {
                pool.Return(pairs);
            }
        })).ToArray();
        foreach (Thread worker in workers)
        {
            worker.Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        return failures.IsEmpty ? null : failures.MinBy(f => f.Index);
    }

    private static (TStep[] Steps, Exception Error, string Report) Shrink<TStep>(
        Gen<TStep[]> sequences, TStep[] failing, Exception error, string failingSeed, Action<TStep[], LoopbackPairs> check, PairsPool pool)
        where TStep : notnull
    {
        Stopwatch clock = Stopwatch.StartNew();
        object gate = new();
        TStep[] smallest = failing;
        Exception smallestError = error;
        string csCheck;
        try
        {
            // CsCheck replays the failing seed first, then keeps drawing and asserts only sequences smaller than the
            // smallest failure so far; every failure it meets passes through here, so the smallest one is kept.
            sequences.Sample(steps =>
            {
                if (Fails(steps, check, pool, out Exception? e))
                {
                    lock (gate)
                    {
                        if (IsSmaller(steps, smallest))
                        {
                            (smallest, smallestError) = (steps, e!);
                        }
                    }

                    throw e!;
                }
            }, seed: failingSeed, time: ShrinkSeconds, threads: Workers, print: steps => SequencePrinter.Steps(steps));
            csCheck = "CsCheck could not make it fail again";
        }
        catch (CsCheckException shrunk)
        {
            csCheck = "CsCheck: " + shrunk.Message.Split('\n')[0];
        }

        // Polish: drop single steps while the sequence still fails (CsCheck's search is random; this makes it 1-minimal).
        int deleted = 0;
        for (bool progress = true; progress && clock.Elapsed < TimeSpan.FromSeconds(ShrinkSeconds * 2);)
        {
            progress = false;
            for (int i = smallest.Length - 1; i >= 0 && clock.Elapsed < TimeSpan.FromSeconds(ShrinkSeconds * 2); i--)
            {
                TStep[] candidate = [.. smallest[..i], .. smallest[(i + 1)..]];
                if (candidate.Length > 0 && Fails(candidate, check, pool, out Exception? e))
                {
                    (smallest, smallestError) = (candidate, e!);
                    deleted++;
                    progress = true;
                }
            }
        }

        // Then smaller arguments, one at a time (socket 0, 1 byte, one thread...), kept when the sequence still fails.
        int simplified = 0;
        for (int pass = 0; pass < 3; pass++)
        {
            for (int i = 0; i < smallest.Length && clock.Elapsed < TimeSpan.FromSeconds(ShrinkSeconds * 2); i++)
            {
                foreach (TStep simpler in SimplerSteps(smallest[i]))
                {
                    TStep[] candidate = [.. smallest];
                    candidate[i] = simpler;
                    if (Fails(candidate, check, pool, out Exception? e) && Root(e!) is ModelViolation)
                    {
                        (smallest, smallestError) = (candidate, e!);
                        simplified++;
                        break;
                    }
                }
            }
        }

        return (smallest, smallestError, $"{csCheck}; then {deleted} steps deleted and {simplified} simplified; {clock.Elapsed.TotalSeconds:F0} s");
    }

    /// <summary>
    /// The step with one argument made simpler: an int halved, or 1 (0 for an index); a bool false. A step record's arguments are
    /// its primary constructor's, so any step type works. Candidates that break the step itself (a zero-byte buffer)
    /// fail with an exception that is not a <see cref="ModelViolation"/> and are not kept.
    /// </summary>
    private static IEnumerable<TStep> SimplerSteps<TStep>(TStep step) where TStep : notnull
    {
        System.Reflection.ConstructorInfo constructor = step.GetType().GetConstructors().Single();
        System.Reflection.ParameterInfo[] parameters = constructor.GetParameters();
        object?[] arguments = [.. parameters.Select(p => step.GetType().GetProperty(p.Name!)!.GetValue(step))];
        for (int j = 0; j < arguments.Length; j++)
        {
            IEnumerable<object> simpler = arguments[j] switch
            {
                int value => new[] { IsIndex(parameters[j]) ? 0 : 1, 1, value / 2 }
                    .Where(v => v < value && v >= (IsIndex(parameters[j]) ? 0 : 1)).Distinct().Order().Cast<object>(),
                true => [false],
                _ => [],
            };
            foreach (object value in simpler)
            {
                object?[] changed = [.. arguments];
                changed[j] = value;
                yield return (TStep)constructor.Invoke(changed);
            }
        }
    }

    /// <summary>Arguments that pick something (a socket, a connection, a lent buffer) may be 0; counts and sizes stay at least 1, as generated.</summary>
    private static bool IsIndex(System.Reflection.ParameterInfo parameter) => parameter.Name is "Socket" or "Connection" or "Lent";

    private static Exception Root(Exception error) => error.InnerException is { } inner ? Root(inner) : error;

    private static bool Fails<TStep>(TStep[] steps, Action<TStep[], LoopbackPairs> check, PairsPool pool, out Exception? error)
    {
        LoopbackPairs pairs = pool.Rent();
        try
        {
            check(steps, pairs);
            error = null;
            return false;
        }
        catch (Exception e)
        {
            error = e;
            return true;
        }
        finally
        {
            pool.Return(pairs);
        }
    }

    private static bool IsSmaller<TStep>(TStep[] candidate, TStep[] current) where TStep : notnull =>
        candidate.Length < current.Length
        || (candidate.Length == current.Length && SequencePrinter.Steps(candidate).Length < SequencePrinter.Steps(current).Length);

    private static int ReadInt(string variable, int fallback) =>
        int.TryParse(Environment.GetEnvironmentVariable(variable), NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) && value > 0
            ? value
            : fallback;

    /// <summary>Listeners for the threads that run sequences (CsCheck's shrinking runs on pool threads of its own).</summary>
    private sealed class PairsPool : IDisposable
    {
        private readonly ConcurrentBag<LoopbackPairs> _idle = [];
        private readonly ConcurrentBag<LoopbackPairs> _all = [];

        public LoopbackPairs Rent()
        {
            if (_idle.TryTake(out LoopbackPairs? pairs))
            {
                return pairs;
            }

            pairs = new LoopbackPairs();
            _all.Add(pairs);
            return pairs;
        }

        public void Return(LoopbackPairs pairs) => _idle.Add(pairs);

        public void Dispose()
        {
            foreach (LoopbackPairs pairs in _all)
            {
                pairs.Dispose();
            }
        }
    }
}
