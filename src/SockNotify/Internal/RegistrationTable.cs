using System.Net.Sockets;

namespace SockNotify.Internal;

/// <summary>
/// A port's registrations by slot (<see cref="SocketOwners"/> finds them by socket).
/// <para>
/// Slots give kernel events a token of (slot, generation) instead of a descriptor number, as nginx's instance bit and
/// libuv's invalidation do: a descriptor closed and reused, or a slot freed and reallocated, changes the token, so a
/// stale event finds no registration. Readers (the dequeue path) take no lock; allocation and release do.
/// </para>
/// <para>
/// Sockets closed without Remove leave their registration behind (the kernel drops its side silently). Rather than
/// poll for that, the table sweeps such registrations whenever it runs out of free slots, before it grows, so their
/// memory is bounded by the live registrations and reclaimed in amortized O(1).
/// </para>
/// </summary>
internal sealed class RegistrationTable(PortCore port)
{
    private const int InitialCapacity = 64;

    private readonly Lock _gate = new();
    private Registration?[] _slots = new Registration?[InitialCapacity];
    private uint[] _generations = new uint[InitialCapacity];
    private int[] _freeSlots = new int[InitialCapacity];
    private int _freeCount;
    private int _highWater;

    /// <summary>Finds the live registration a kernel event's token names, or null for a stale token.</summary>
    public Registration? Find(SlotToken token)
    {
        Registration?[] slots = Volatile.Read(ref _slots);
        uint slot = (uint)token.Slot;
        if (slot >= (uint)slots.Length)
        {
            return null;
        }

        Registration? registration = slots[slot];
        return registration is not null && registration.Token == token ? registration : null;
    }

    public Registration Allocate(SafeSocketHandle handle, object? completionKey) =>
        Allocate(handle, completionKey, association: false);

    public Association AllocateAssociation(SafeSocketHandle handle, object? completionKey) =>
        (Association)Allocate(handle, completionKey, association: true);

    /// <summary>
    /// Adds to <paramref name="closed"/> the associations whose socket was disposed among the next
    /// <paramref name="budget"/> slots from <paramref name="cursor"/>, which moves on (wrapping around). Takes no lock,
    /// as <see cref="Find"/> does, so that allocation never waits for a sweep.
    /// </summary>
    public void CollectClosedAssociations(List<Association> closed, ref int cursor, int budget)
    {
        Registration?[] slots = Volatile.Read(ref _slots);
        int end = Math.Min(Volatile.Read(ref _highWater), slots.Length);
        if (cursor >= end)
        {
            cursor = 0;
        }

        int stop = Math.Min(end, cursor + budget);
        for (; cursor < stop; cursor++)
        {
            if (Volatile.Read(ref slots[cursor]) is Association { Handle.IsClosed: true, IsRemoved: false } association)
            {
                closed.Add(association);
            }
        }
    }

    private Registration Allocate(SafeSocketHandle handle, object? completionKey, bool association)
    {
        lock (_gate)
        {
            if (_freeCount == 0 && _highWater == _slots.Length)
            {
                SweepClosedSockets();
                if (_freeCount == 0)
                {
                    Grow();
                }
            }

            int slot = _freeCount > 0 ? _freeSlots[--_freeCount] : _highWater;
            SlotToken token = SlotToken.For(slot, ++_generations[slot]);
            Registration registration = association
                ? new Association(port, handle, completionKey, token)
                : new Registration(port, handle, completionKey, token);
            Volatile.Write(ref _slots[slot], registration);
            if (slot == _highWater)
            {
                Volatile.Write(ref _highWater, slot + 1); // After the slot, for the sweep's lock-free scan.
            }

            return registration;
        }
    }

    /// <summary>Frees the slot of a registration whose <see cref="Registration.TryMarkRemoved"/> the caller won.</summary>
    public void Free(Registration registration)
    {
        SocketOwners.Release(registration);
        lock (_gate)
        {
            FreeSlot(registration);
        }
    }

    /// <summary>
    /// Ends a registration without a Remove notification (its socket was closed, or its creation is undone), unless
    /// something else ended it first.
    /// </summary>
    public static void EndSilently(Registration registration)
    {
        if (registration.TryMarkRemoved())
        {
            registration.Port.Registrations.Free(registration);
        }
    }

    /// <summary>
    /// Ends every registration (port disposal), adding the associations it ended to <paramref name="ended"/> so that the
    /// engine can wait out their operations. No Remove notifications: the port is gone.
    /// </summary>
    public void Clear(List<Association> ended)
    {
        lock (_gate)
        {
            for (int slot = 0; slot < _highWater; slot++)
            {
                if (_slots[slot] is Association association && !association.IsRemoved)
                {
                    ended.Add(association);
                }
            }

            EndWhere(static _ => true);
        }
    }

    /// <summary>The number of live slots (tests use it to prove that churn and closed sockets leave nothing behind).</summary>
    internal int Count
    {
        get
        {
            lock (_gate)
            {
                return _highWater - _freeCount;
            }
        }
    }

    // Associations are left to the port's sweep, which must also complete their operations.
    private void SweepClosedSockets() => EndWhere(static registration => registration is not Association && registration.Handle.IsClosed);

    /// <summary>Ends, silently, every live registration that <paramref name="shouldEnd"/> picks. Called under the gate.</summary>
    private void EndWhere(Func<Registration, bool> shouldEnd)
    {
        for (int slot = 0; slot < _highWater; slot++)
        {
            if (_slots[slot] is { } registration && shouldEnd(registration) && registration.TryMarkRemoved())
            {
                SocketOwners.Release(registration);
                FreeSlot(registration);
            }
        }
    }

    private void FreeSlot(Registration registration)
    {
        if (_slots[registration.Slot] == registration)
        {
            _slots[registration.Slot] = null;
            _freeSlots[_freeCount++] = registration.Slot;
        }
    }

    private void Grow()
    {
        int capacity = _slots.Length * 2;
        Array.Resize(ref _generations, capacity);
        Array.Resize(ref _freeSlots, capacity);
        Registration?[] slots = new Registration?[capacity];
        Array.Copy(_slots, slots, _slots.Length);
        // Published after the copy: a reader holding the old array still finds every registration it can name.
        Volatile.Write(ref _slots, slots);
    }
}
