namespace SockNotify.Internal;

/// <summary>
/// What the kernel carries back for a registration or an operation (epoll's data, io_uring's user data, a Windows
/// completion key): a slot in one of the port's tables and that slot's generation. The generation changes every time
/// the slot is reused, so a late report for an earlier use finds nothing, as nginx's instance bit and libuv's
/// invalidation make sure. The top bit is always clear: engines use it to tag their own kernel requests.
/// </summary>
internal readonly record struct SlotToken(ulong Value)
{
    /// <summary>The bits a generation keeps (31: the top bit of the token stays clear).</summary>
    public const uint GenerationMask = 0x7FFF_FFFF;

    /// <summary>The top bit, never set in a token: free for an engine's own requests.</summary>
    public const ulong EngineBit = 1UL << 63;

    public static SlotToken For(int slot, uint generation) => new(((ulong)(generation & GenerationMask) << 32) | (uint)slot);

    public int Slot => (int)(uint)Value;
}
