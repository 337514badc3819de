using System.Buffers.Binary;

namespace SockNotify.Cli.Soak;

/// <summary>
/// The bytes one soak connection sends: a pseudo-random stream drawn from the connection's key, so that the echo is
/// verified without keeping a copy of what was sent, and a server that swapped data between connections, repeated,
/// dropped or shifted it, or echoed a stale buffer, is caught at the first wrong byte.
/// </summary>
internal static class SoakStream
{
    /// <summary>A connection's key: distinct for every (seed, client, connection of that client).</summary>
    public static ulong Key(int seed, int client, long connection) =>
        Mix(Mix((ulong)(uint)seed << 32 | (uint)client) ^ (ulong)connection);

    /// <summary>Writes the stream's bytes from <paramref name="offset"/> on into <paramref name="destination"/>.</summary>
    public static void Fill(ulong key, long offset, Span<byte> destination)
    {
        // Byte k is byte (k mod 8) of the little-endian word Mix(key + k / 8): a word per 8 bytes, written whole when aligned.
        int head = (int)Math.Min(destination.Length, (8 - (offset & 7)) & 7);
        for (int i = 0; i < head; i++)
        {
            destination[i] = ByteAt(key, offset + i);
        }

        long word = (offset + head) >> 3;
        int filled = head;
        for (; filled + 8 <= destination.Length; filled += 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(destination[filled..], Word(key, word++));
        }

        for (; filled < destination.Length; filled++)
        {
            destination[filled] = ByteAt(key, offset + filled);
        }
    }

    /// <summary>
    /// The index in <paramref name="received"/> of the first byte that differs from the stream at
    /// <paramref name="offset"/>, or -1 when all match. <paramref name="scratch"/> is at least as long as
    /// <paramref name="received"/>.
    /// </summary>
    public static int FirstMismatch(ulong key, long offset, ReadOnlySpan<byte> received, Span<byte> scratch)
    {
        Span<byte> expected = scratch[..received.Length];
        Fill(key, offset, expected);
        int common = received.CommonPrefixLength(expected);
        return common == received.Length ? -1 : common;
    }

    public static byte ByteAt(ulong key, long offset) => (byte)(Word(key, offset >> 3) >> (int)((offset & 7) * 8));

    private static ulong Word(ulong key, long index) => Mix(key + (ulong)index * 0x9e3779b97f4a7c15UL);

    /// <summary>SplitMix64's finalizer.</summary>
    private static ulong Mix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9UL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebUL;
        return x ^ (x >> 31);
    }
}
