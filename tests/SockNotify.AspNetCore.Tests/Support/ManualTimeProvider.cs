namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>
/// A clock whose timers fire only when the test says so: a pause taken on it (Task.Delay with this provider) lasts
/// until <see cref="FirePending"/>, however long the test looks at what happens meanwhile.
/// </summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private readonly Lock _gate = new();
    private readonly List<ManualTimer> _pending = [];
    private readonly SemaphoreSlim _created = new(0);

    /// <summary>Timers made so far (each pause makes one).</summary>
    public int Created { get; private set; }

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ManualTimer timer = new(this, callback, state);
        lock (_gate)
        {
            Created++;
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                _pending.Add(timer);
            }
        }

        _created.Release();
        return timer;
    }

    /// <summary>Waits until <paramref name="count"/> timers in all were made; false if that took longer than <paramref name="patience"/>.</summary>
    public async Task<bool> WaitForTimersAsync(int count, TimeSpan patience)
    {
        using CancellationTokenSource deadline = new(patience);
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    if (Created >= count)
                    {
                        return true;
                    }
                }

                await _created.WaitAsync(deadline.Token);
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Fires every timer due and not disposed, once; returns how many fired.</summary>
    public int FirePending()
    {
        ManualTimer[] due;
        lock (_gate)
        {
            due = [.. _pending];
            _pending.Clear();
        }

        foreach (ManualTimer timer in due)
        {
            timer.Fire();
        }

        return due.Length;
    }

    private void Forget(ManualTimer timer)
    {
        lock (_gate)
        {
            _pending.Remove(timer);
        }
    }

    private sealed class ManualTimer(ManualTimeProvider clock, TimerCallback callback, object? state) : ITimer
    {
        public void Fire() => callback(state);

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            clock.Forget(this);
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                lock (clock._gate)
                {
                    clock._pending.Add(this);
                }
            }

            return true;
        }

        public void Dispose() => clock.Forget(this);

        public ValueTask DisposeAsync()
        {
            Dispose();
            return default;
        }
    }
}
