using System.Net.Sockets;

namespace SockNotify.Internal;

/// <summary>
/// The registration state machine of one port: Enable, Disable and Remove items, associations, and the claim that
/// makes a socket belong to one registration of one port.
/// <para><b>Life of a registration.</b></para>
/// <list type="number">
/// <item><b>Claimed</b>: an Enable for an unknown socket (or an Associate) allocates a registration, locks it, and
/// claims its socket in <see cref="SocketOwners"/>. It is locked before it is published, so another thread's item for
/// the same socket finds it and waits on its lock until the kernel knows it.</item>
/// <item><b>Live</b>: the engine registered it. Enable re-arms, Disable stops delivery; each runs under the
/// registration's lock, and the kernel call and <see cref="Registration.Deliverable"/> change together.</item>
/// <item><b>Ended</b>: <see cref="Registration.TryMarkRemoved"/> picks exactly one ender among Remove, the socket's
/// close (found on the next item, by the sweep, or when another socket claims the descriptor number) and port disposal.
/// Only the ender frees the slot; only a Remove that the kernel accepted queues the Remove notification, after the
/// kernel forgot the socket and delivery stopped, so it is the last notification of its key.</item>
/// </list>
/// <para><b>The claim race.</b> Two threads may Enable the same socket at once; both allocate, one claim wins, and the
/// loser ends its registration silently and applies its item to the winner's (found by handle identity). A descriptor
/// number can outlive its socket in the owner table when the socket was closed without Remove: the new socket's claim
/// then finds a closed owner, ends it silently (completing an association's operations) and tries again. A claim that
/// meets another open <see cref="Socket"/> object wrapping the same descriptor fails (an Enable with a result, an
/// Associate with an exception). A socket whose owner is a port being disposed is released to the claimant, as that
/// port will drop it anyway.</para>
/// <para><b>Disposal.</b> The port marks itself disposed before it clears the table, so a claim either sees the mark
/// (and ends what it allocated) or is ended by the clear, after the kernel learnt of it.</para>
/// </summary>
internal sealed class Registrar(PortCore port)
{
    /// <summary>Sockets between <see cref="EndBeforeClose"/> and their disposal (see <see cref="FindAssociation"/>).</summary>
    private readonly System.Collections.Concurrent.ConcurrentDictionary<SafeSocketHandle, byte> _closing = new();

    private enum Claim
    {
        /// <summary>The registration owns its socket; its lock is held and the port was not disposed.</summary>
        Won,

        /// <summary>Look the socket up again: another registration of this very socket won, or a stale one was ended.</summary>
        Retry,

        /// <summary>Another open socket object wrapping the same descriptor is registered.</summary>
        Conflict,

        /// <summary>The port is being disposed.</summary>
        PortClosed,
    }

    /// <summary>Applies one Enable, Disable or Remove item and returns its result; never throws for a bad item.</summary>
    public SocketNotifyResult Apply(in SocketNotifyRegistration item, bool queueRemoveNotification)
    {
        SocketNotifyOperation operation = item.Operation;
        if (operation == SocketNotifyOperation.None)
        {
            return SocketNotifyResult.Success;
        }

        if (port.Lifetime.IsDisposed)
        {
            return SocketNotifyResult.PortClosed; // Disposed while this batch was being applied.
        }

        if (item.Socket is null
            || operation is not (SocketNotifyOperation.Enable or SocketNotifyOperation.Disable or SocketNotifyOperation.Remove)
            || (operation == SocketNotifyOperation.Enable && !IsValidEnable(item.EventFilter, item.TriggerFlags)))
        {
            return SocketNotifyResult.InvalidRegistration;
        }

        SafeSocketHandle handle = SocketHandles.Of(item.Socket);
        while (true)
        {
            Registration? registration = SocketOwners.Find(handle);
            if (handle.IsClosed || handle.IsInvalid)
            {
                // Closing the socket deregistered it in the kernel; drop our side silently, as the seed specifies.
                if (registration is not null)
                {
                    EndClosed(registration);
                }

                return SocketNotifyResult.SocketClosed;
            }

            if (registration is null)
            {
                if (operation != SocketNotifyOperation.Enable)
                {
                    return SocketNotifyResult.NotRegistered;
                }

                _ = item.Socket.SafeHandle; // Exposed once, at registration, so .NET never swaps it (see SocketHandles).
                if (TryCreate(handle, item, out SocketNotifyResult created))
                {
                    return created;
                }

                continue; // Another thread registered the socket first: apply the item to its registration.
            }

            if (registration.Port != port)
            {
                if (!TakeOverFromDisposedPort(registration))
                {
                    return SocketNotifyResult.RegisteredWithAnotherPort;
                }

                continue;
            }

            if (registration is Association)
            {
                return SocketNotifyResult.InvalidRegistration; // Associated for overlapped operations instead.
            }

            lock (registration)
            {
                if (registration.IsRemoved)
                {
                    continue; // Removed while we looked it up: start again from the owner table.
                }

                return operation switch
                {
                    SocketNotifyOperation.Enable => Rearm(registration, item.EventFilter, item.TriggerFlags),
                    SocketNotifyOperation.Disable => Disable(registration),
                    _ => Remove(registration, queueRemoveNotification),
                };
            }
        }
    }

    /// <summary>Associates a socket for overlapped operations; throws when it cannot (see <see cref="CompletionPort.Associate"/>).</summary>
    public void Associate(Socket socket, object? completionKey)
    {
        SafeSocketHandle handle = socket.SafeHandle; // Exposed once, here: see SocketHandles.
        ObjectDisposedException.ThrowIf(handle.IsClosed, socket);
        socket.Blocking = false;
        while (true)
        {
            if (SocketOwners.Find(handle) is { } existing)
            {
                if (TakeOverFromDisposedPort(existing))
                {
                    continue;
                }

                throw AlreadyOwned(existing is Association && existing.Port == port);
            }

            Association association = port.Registrations.AllocateAssociation(handle, completionKey);
            lock (association)
            {
                switch (TryClaim(association, out _))
                {
                    case Claim.Retry:
                        continue;
                    case Claim.Conflict:
                        throw AlreadyOwned(sameAssociation: false);
                    case Claim.PortClosed:
                        throw new ObjectDisposedException(typeof(CompletionPort).FullName);
                }

                SocketNotifyResult result = port.Engine.Associate(association);
                if (result != SocketNotifyResult.Success)
                {
                    RegistrationTable.EndSilently(association);
                    throw new SocketException((int)(result == SocketNotifyResult.InsufficientResources
                        ? SocketError.NoBufferSpaceAvailable : SocketError.SocketError));
                }
            }

            return;
        }
    }

    /// <summary>
    /// Ends whatever this port holds for a socket its owner is about to close (see <see cref="CompletionPort.CloseSocket"/>):
    /// an association ends as <see cref="OperationManager.EndAssociation"/> does, a registration silently, with the
    /// kernel's side deleted first. Nothing happens for a socket this port does not hold.
    /// </summary>
    /// <exception cref="InvalidOperationException">Another port holds the socket.</exception>
    public void EndBeforeClose(SafeSocketHandle handle)
    {
        // From here until the socket is disposed, a start on another thread finds no association, and must see the
        // socket as closed (OperationAborted), not as never associated.
        _closing.TryAdd(handle, 0);
        if (SocketOwners.Find(handle) is not { } registration)
        {
            return;
        }

        if (registration.Port != port)
        {
            if (!TakeOverFromDisposedPort(registration))
            {
                throw new InvalidOperationException("The socket is registered or associated with another port; close it there.");
            }

            return;
        }

        if (registration is Association association)
        {
            port.Operations.EndAssociation(association);
            return;
        }

        lock (registration)
        {
            Remove(registration, queueNotification: false);
        }
    }

    /// <summary>
    /// The socket's association with this port, or null when the socket is closed (its association, if any, is left
    /// to whoever ends it). Throws when the socket is open and not associated with this port.
    /// </summary>
    public Association? FindAssociation(SafeSocketHandle handle)
    {
        Association? association = TryFindAssociation(handle);
        // Closed, or being closed by CloseSocket (its association already ended): OperationAborted. In this order: a close
        // that ended the association before the lookup either is still listed, or has disposed the handle since.
        if (association is null ? _closing.ContainsKey(handle) || handle.IsClosed : handle.IsClosed)
        {
            return null;
        }

        return association ?? throw new InvalidOperationException($"The socket is not associated with this port; call Associate first.");
    }

    /// <summary>Ends what <see cref="EndBeforeClose"/> began, once the socket is disposed.</summary>
    public void EndClose(SafeSocketHandle handle) => _closing.TryRemove(handle, out _);

    /// <summary>The socket's association with this port, or null; never throws.</summary>
    public Association? TryFindAssociation(SafeSocketHandle handle) =>
        SocketOwners.Find(handle) is Association association && association.Port == port ? association : null;

    /// <summary>
    /// Ends, silently, the registration of a socket that was disposed, in whichever port holds it: an association's
    /// operations complete with OperationAborted.
    /// </summary>
    public static void EndClosed(Registration registration)
    {
        PortCore owner = registration.Port;
        if (!owner.Lifetime.TryEnter())
        {
            // That port is being disposed and ends its registrations itself; its engine may be going away, so only the
            // socket's entry is released here.
            SocketOwners.Release(registration);
            return;
        }

        try
        {
            if (registration is Association association)
            {
                owner.Operations.EndAssociation(association);
            }
            else
            {
                RegistrationTable.EndSilently(registration);
            }
        }
        finally
        {
            owner.Lifetime.Exit();
        }
    }

    private static bool IsValidEnable(SocketNotifyEvents filter, SocketNotifyTrigger trigger)
    {
        const SocketNotifyTrigger known = SocketNotifyTrigger.Level | SocketNotifyTrigger.Edge
            | SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Persistent;
        return filter != SocketNotifyEvents.None
            && (filter & ~SocketNotifyEvents.All) == 0
            && (trigger & ~known) == 0
            && ((trigger & SocketNotifyTrigger.Level) != 0) != ((trigger & SocketNotifyTrigger.Edge) != 0)
            && (trigger & (SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Persistent))
                != (SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Persistent);
    }

    private static InvalidOperationException AlreadyOwned(bool sameAssociation) => new(sameAssociation
        ? "The socket is already associated with this port."
        : "The socket is registered or associated with a port already.");

    /// <summary>True when the registration's port is being disposed, after releasing its socket to the caller.</summary>
    private bool TakeOverFromDisposedPort(Registration registration)
    {
        if (registration.Port == port || !registration.Port.Lifetime.IsDisposed)
        {
            return false;
        }

        SocketOwners.Release(registration); // The other port is closing and will drop the socket anyway.
        return true;
    }

    /// <summary>
    /// The one claim routine, for registrations and associations alike. The caller holds the new registration's lock;
    /// on anything but <see cref="Claim.Won"/> the registration has been ended silently.
    /// </summary>
    private Claim TryClaim(Registration registration, out Registration? conflicting)
    {
        conflicting = null;
        if (SocketOwners.TryClaim(registration) is { } owner)
        {
            RegistrationTable.EndSilently(registration);
            if (owner.Handle == registration.Handle)
            {
                return Claim.Retry; // Another thread claimed this socket first.
            }

            if (owner.Handle.IsClosed)
            {
                // A socket closed without Remove left its entry, and this socket got its number: end it silently.
                EndClosed(owner);
                return Claim.Retry;
            }

            if (TakeOverFromDisposedPort(owner))
            {
                return Claim.Retry;
            }

            conflicting = owner;
            return Claim.Conflict;
        }

        // Disposal marks the port before it clears the table: either the mark is seen here, or the clear ends this one.
        if (port.Lifetime.IsDisposed || registration.IsRemoved)
        {
            RegistrationTable.EndSilently(registration);
            return Claim.PortClosed;
        }

        return Claim.Won;
    }

    /// <summary>Creates a registration; false when the item must be looked up again (see <see cref="Claim.Retry"/>).</summary>
    private bool TryCreate(SafeSocketHandle handle, in SocketNotifyRegistration item, out SocketNotifyResult result)
    {
        Registration registration = port.Registrations.Allocate(handle, item.CompletionKey);
        lock (registration)
        {
            switch (TryClaim(registration, out Registration? conflicting))
            {
                case Claim.Retry:
                    result = default;
                    return false;
                case Claim.Conflict:
                    // Another open Socket object wraps the same descriptor and is registered.
                    result = conflicting!.Port == port ? SocketNotifyResult.SystemError : SocketNotifyResult.RegisteredWithAnotherPort;
                    return true;
                case Claim.PortClosed:
                    result = SocketNotifyResult.PortClosed;
                    return true;
            }

            // Deliverable before the kernel can report anything, or a first edge could be dropped.
            registration.Deliverable = item.EventFilter | SocketNotifyEvents.Err;
            result = port.Engine.Add(registration, item.EventFilter, item.TriggerFlags);
            if (result != SocketNotifyResult.Success)
            {
                RegistrationTable.EndSilently(registration);
            }

            return true;
        }
    }

    private SocketNotifyResult Rearm(Registration registration, SocketNotifyEvents filter, SocketNotifyTrigger trigger)
    {
        SocketNotifyEvents previous = registration.Deliverable;
        registration.Deliverable = filter | SocketNotifyEvents.Err;
        SocketNotifyResult result = port.Engine.Modify(registration, filter, trigger);
        if (result != SocketNotifyResult.Success)
        {
            registration.Deliverable = previous;
        }

        return result;
    }

    private SocketNotifyResult Disable(Registration registration)
    {
        registration.Deliverable = SocketNotifyEvents.None;
        return port.Engine.Disable(registration);
    }

    private SocketNotifyResult Remove(Registration registration, bool queueNotification)
    {
        if (!registration.TryMarkRemoved())
        {
            return SocketNotifyResult.NotRegistered; // Ended meanwhile by its socket's close or the port's disposal.
        }

        SocketNotifyResult result = port.Engine.Delete(registration);
        port.Registrations.Free(registration);
        if (result == SocketNotifyResult.Success && queueNotification)
        {
            // Queued only after the kernel forgot the socket and the registration stopped delivering, so it is last.
            port.Engine.Post(new CompletionEntry(registration.CompletionKey, (uint)SocketNotifyEvents.Remove, null, CompletionKind.Notification));
        }

        return result;
    }
}
