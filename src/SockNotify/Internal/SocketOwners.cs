using System.Net.Sockets;

namespace SockNotify.Internal;

/// <summary>
/// Which registration owns each socket, across all ports (a socket belongs to one port at a time), indexed by
/// descriptor number. An entry counts only for the very <see cref="SafeSocketHandle"/> it was claimed with: after a
/// socket is closed without Remove its number may be reused, and the new socket's claim ends the stale entry.
/// Lookups take no lock and allocate nothing; claims and releases (registration creation and end) take one.
/// </summary>
internal static class SocketOwners
{
    private static readonly Lock s_gate = new();
    private static Registration?[] s_byDescriptor = new Registration?[1024];

    /// <summary>The registration of this very socket, or null.</summary>
    public static Registration? Find(SafeSocketHandle handle)
    {
        Registration?[] owners = Volatile.Read(ref s_byDescriptor);
        int descriptor = Descriptor(handle);
        if ((uint)descriptor >= (uint)owners.Length)
        {
            return null;
        }

        Registration? owner = Volatile.Read(ref owners[descriptor]);
        return owner is not null && owner.Handle == handle ? owner : null;
    }

    /// <summary>Claims the registration's socket; returns null on success, else the registration that holds its number.</summary>
    public static Registration? TryClaim(Registration registration)
    {
        int descriptor = Descriptor(registration.Handle);
        lock (s_gate)
        {
            if (descriptor >= s_byDescriptor.Length)
            {
                Registration?[] grown = new Registration?[Math.Max(s_byDescriptor.Length * 2, descriptor + 1)];
                Array.Copy(s_byDescriptor, grown, s_byDescriptor.Length);
                Volatile.Write(ref s_byDescriptor, grown);
            }

            Registration? owner = s_byDescriptor[descriptor];
            if (owner is null)
            {
                Volatile.Write(ref s_byDescriptor[descriptor], registration);
            }

            return owner;
        }
    }

    /// <summary>Drops the registration's entry, unless the number already belongs to a newer one.</summary>
    public static void Release(Registration registration)
    {
        int descriptor = Descriptor(registration.Handle);
        lock (s_gate)
        {
            if (descriptor < s_byDescriptor.Length && s_byDescriptor[descriptor] == registration)
            {
                Volatile.Write(ref s_byDescriptor[descriptor], null);
            }
        }
    }

    // The number stays readable after the handle is closed, which is what finding a stale entry needs.
    private static int Descriptor(SafeSocketHandle handle) => (int)handle.DangerousGetHandle();
}
