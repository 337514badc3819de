namespace SockNotify.Internal;

/// <summary>
/// Counts the calls inside a port so that its engine is torn down only when none is left: a thread still in
/// <c>epoll_wait</c> must never see its descriptors closed or reused under it.
/// <para>
/// The count starts at one, the port's own reference, which <see cref="BeginDispose"/> lets the first disposer
/// release. Every public call enters (<see cref="Enter"/> throws once disposal began; internal work uses
/// <see cref="TryEnter"/>) and exits; whichever exit brings the count to zero runs the teardown, once.
/// </para>
/// </summary>
internal sealed class PortLifetime(object owner, Action teardown)
{
    private int _users = 1;
    private int _disposeStarted;
    private volatile bool _disposed;

    /// <summary>True from the start of disposal: waiters return PortClosed and new work is refused.</summary>
    public bool IsDisposed => _disposed;

    /// <summary>Enters the port, or throws <see cref="ObjectDisposedException"/> naming the port.</summary>
    public void Enter() => ObjectDisposedException.ThrowIf(!TryEnter(), owner);

    public bool TryEnter()
    {
        while (true)
        {
            int users = Volatile.Read(ref _users);
            if (_disposed || users == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref _users, users + 1, users) == users)
            {
                return true;
            }
        }
    }

    public void Exit()
    {
        if (Interlocked.Decrement(ref _users) == 0)
        {
            teardown();
        }
    }

    /// <summary>Marks the port disposed; true for the first caller only, which must then <see cref="Exit"/> once.</summary>
    public bool BeginDispose()
    {
        if (Interlocked.Exchange(ref _disposeStarted, 1) != 0)
        {
            return false;
        }

        _disposed = true;
        return true;
    }
}
