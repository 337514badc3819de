namespace SockNotify.Internal;

/// <summary>
/// One background thread for the whole process that runs every live port's sweep periodically (see
/// <see cref="OperationManager.Sweep"/>). A thread of its own, not a timer, so that a starved thread pool cannot delay
/// the completions of disposed sockets' operations. Ports join on their first association and leave on disposal.
/// </summary>
internal static class PortSweeper
{
    public static readonly TimeSpan Period = TimeSpan.FromMilliseconds(50);

    private static readonly Lock s_gate = new();

    /// <summary>Weak, so that a port its owner dropped without disposing can still be collected.</summary>
    private static readonly List<WeakReference<OperationManager>> s_ports = [];
    private static WeakReference<OperationManager>[] s_snapshot = [];
    private static Thread? s_thread;

    public static void Add(OperationManager port)
    {
        lock (s_gate)
        {
            s_ports.Add(new WeakReference<OperationManager>(port));
            s_snapshot = [.. s_ports];
            if (s_thread is null)
            {
                s_thread = new Thread(Run) { IsBackground = true, Name = "SockNotify sweeper" };
                s_thread.Start();
            }
        }
    }

    public static void Remove(OperationManager port)
    {
        lock (s_gate)
        {
            if (s_ports.RemoveAll(entry => !entry.TryGetTarget(out OperationManager? target) || target == port) > 0)
            {
                s_snapshot = [.. s_ports];
            }
        }
    }

    /// <summary>Forgets ports that were collected without being disposed.</summary>
    private static void Prune()
    {
        lock (s_gate)
        {
            if (s_ports.RemoveAll(entry => !entry.TryGetTarget(out _)) > 0)
            {
                s_snapshot = [.. s_ports];
            }
        }
    }

    private static void Run()
    {
        while (true)
        {
            Thread.Sleep(Period);
            SweepAll();
        }
    }

    // A method of its own, not inlined: a local of Run's loop could keep the last port it swept reachable while the
    // thread sleeps (unoptimized code reports every local live), and a port nobody holds must stay collectable.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void SweepAll()
    {
        foreach (WeakReference<OperationManager> entry in Volatile.Read(ref s_snapshot))
        {
            if (!entry.TryGetTarget(out OperationManager? port))
            {
                Prune();
                continue;
            }

            try
            {
                port.Sweep();
            }
            catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception)
            {
                // The port's ring failed: its own callers meet the error at their next call. This thread serves
                // every port of the process and must not die with one.
            }
        }
    }
}
