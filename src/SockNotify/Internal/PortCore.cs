using SockNotify.Backends;

namespace SockNotify.Internal;

/// <summary>
/// The inside of one <see cref="CompletionPort"/>: it only holds the parts together, and each part does one job.
/// <list type="table">
/// <item><term><see cref="Lifetime"/></term><description>calls inside the port, and the teardown after the last.</description></item>
/// <item><term><see cref="Registrations"/></term><description>registrations and associations by token.</description></item>
/// <item><term><see cref="Registrar"/></term><description>the registration state machine and the claim of a socket.</description></item>
/// <item><term><see cref="Operations"/></term><description>starting, cancelling and finishing overlapped operations.</description></item>
/// <item><term><see cref="Engine"/></term><description>the operating system's side: waiting, waking, kernel registrations, operations in the kernel.</description></item>
/// </list>
/// The public type validates arguments and delegates here; engines call back only into <see cref="Registrations"/>,
/// <see cref="Operations"/> and <see cref="Lifetime"/>.
/// </summary>
internal sealed class PortCore
{
    public PortCore(CompletionPort owner, CompletionPortOptions options)
    {
        Lifetime = new PortLifetime(owner, TearDown);
        Registrations = new RegistrationTable(this);
        Registrar = new Registrar(this);
        Operations = new OperationManager(this);
        Engine = PortEngine.Create(this, options); // Engines may call into the parts above from now on.
        PortMetrics.Add(this);
    }

    public PortLifetime Lifetime { get; }

    public RegistrationTable Registrations { get; }

    public Registrar Registrar { get; }

    public OperationManager Operations { get; }

    public PortEngine Engine { get; }

    /// <summary>
    /// Disposal: waiters are woken with PortClosed, registrations end without Remove notifications, the kernel lets go
    /// of every operation before this returns, and the engine is torn down once the last call inside the port has left.
    /// </summary>
    public void Dispose()
    {
        if (!Lifetime.BeginDispose())
        {
            return;
        }

        Operations.LeaveSweeper();
        PortMetrics.Remove(this);
        List<Association> ended = [];
        Registrations.Clear(ended);
        // One wake reaches one waiter; each waiter that sees the port closed passes the wake on.
        Engine.Wake();
        // Before Dispose returns, not at the last exit: the caller may free operation buffers as soon as it returns.
        Engine.Quiesce(ended);
        Lifetime.Exit();
    }

    private void TearDown()
    {
        Engine.Dispose();
        Operations.ReleaseMemory(Engine.ReleasedEverything);
    }
}
