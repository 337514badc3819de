namespace SockNotify.Internal;

/// <summary>
/// Every operation object a port ever made, by slot, with the free ones on a stack: the seed's lookaside list of
/// per-operation contexts. A steady load reuses the same few objects and allocates nothing. Lookups by token (the
/// kernel's user data) take no lock; renting and returning take one.
/// </summary>
internal sealed class OperationTable
{
    private readonly Lock _gate = new();
    private Operation?[] _slots = new Operation?[16];
    private Operation[] _free = new Operation[16];
    private int _freeCount;
    private int _count;
    private int _rented;

    /// <summary>User operations started and not yet completed (leak tests).</summary>
    public int InUse => Volatile.Read(ref _rented);

    /// <summary>Rents an operation, <see cref="OperationState.Pending"/> under a new token.</summary>
    public Operation Rent()
    {
        lock (_gate)
        {
            Operation operation;
            if (_freeCount > 0)
            {
                operation = _free[--_freeCount];
            }
            else
            {
                if (_count == _slots.Length)
                {
                    Operation?[] slots = new Operation?[_count * 2];
                    Array.Copy(_slots, slots, _count);
                    Volatile.Write(ref _slots, slots); // Published after the copy, for lock-free readers.
                    Array.Resize(ref _free, _count * 2);
                }

                operation = new Operation(_count);
                _slots[_count++] = operation;
            }

            operation.Generation++;
            operation.State = OperationState.Pending;
            _rented++;
            return operation;
        }
    }

    public void Return(Operation operation)
    {
        operation.Reset();
        lock (_gate)
        {
            operation.Generation++; // A late report for this use must not find the object while it is free.
            _free[_freeCount++] = operation;
            _rented--;
        }
    }

    /// <summary>The operation a kernel completion's user data names, or null if that use is over.</summary>
    public Operation? Find(SlotToken token)
    {
        Operation?[] slots = Volatile.Read(ref _slots);
        uint slot = (uint)token.Slot;
        if (slot >= (uint)slots.Length || slots[slot] is not { } operation)
        {
            return null;
        }

        return operation.Token == token ? operation : null;
    }

    /// <summary>Frees every operation's native memory; only once no kernel call can still use any of them.</summary>
    public void FreeNativeMemory()
    {
        lock (_gate)
        {
            // The engine is gone: operations still out (never completed) give up their pins too.
            for (int i = 0; i < _count; i++)
            {
                _slots[i]!.Reset();
                _slots[i]!.FreeNative();
            }

            _count = 0;
            _freeCount = 0;
            _rented = 0;
        }
    }
}
