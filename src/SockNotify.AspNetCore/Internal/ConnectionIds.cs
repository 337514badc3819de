namespace SockNotify.AspNetCore.Internal;

/// <summary>
/// Connection ids as Kestrel makes them: 13 characters of base 32 from a counter seeded with the start time, so ids
/// differ across restarts and are cheap to make.
/// </summary>
internal static class ConnectionIds
{
    private const string Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUV";

    private static long s_last = DateTime.UtcNow.Ticks;

    public static string Next()
    {
        long id = Interlocked.Increment(ref s_last);
        return string.Create(13, id, static (chars, value) =>
        {
            for (int i = chars.Length - 1; i >= 0; i--)
            {
                chars[i] = Alphabet[(int)(value & 31)];
                value >>= 5;
            }
        });
    }
}
