namespace SockNotify.Cli.Soak;

/// <summary>What the soak's clients did so far, counted across all of them, and the first failure any of them saw.</summary>
internal sealed class SoakTally
{
    private readonly TaskCompletionSource<string> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _open;
    private long _completed;
    private long _reset;
    private long _bytesVerified;

    /// <summary>Client connections connected and not yet closed.</summary>
    public long Open => Interlocked.Read(ref _open);

    /// <summary>Connections that ended with a close or a half-close after every byte came back verified.</summary>
    public long Completed => Interlocked.Read(ref _completed);

    /// <summary>Connections the client reset (linger 0) on purpose.</summary>
    public long Reset => Interlocked.Read(ref _reset);

    /// <summary>Echoed bytes that matched what was sent.</summary>
    public long BytesVerified => Interlocked.Read(ref _bytesVerified);

    /// <summary>Completes with the first failure's description; never completes while all goes well.</summary>
    public Task<string> Failed => _failed.Task;

    public string? Failure => _failed.Task.IsCompleted ? _failed.Task.Result : null;

    public void Opened() => Interlocked.Increment(ref _open);

    public void Closed(bool reset)
    {
        Interlocked.Decrement(ref _open);
        if (reset)
        {
            Interlocked.Increment(ref _reset);
        }
        else
        {
            Interlocked.Increment(ref _completed);
        }
    }

    /// <summary>Counts a connection that failed as closed; the failure itself goes to <see cref="Fail"/>.</summary>
    public void Abandoned() => Interlocked.Decrement(ref _open);

    public void Verified(int bytes) => Interlocked.Add(ref _bytesVerified, bytes);

    /// <summary>Records a failure; only the first one is kept (the others are usually its consequences).</summary>
    public void Fail(string why) => _failed.TrySetResult(why);
}
