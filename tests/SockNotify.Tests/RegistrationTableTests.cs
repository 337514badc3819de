using SockNotify.Internal;
using SockNotify.Tests.Support;

namespace SockNotify.Tests;

public class RegistrationTableTests
{
    [Fact]
    public void A_freed_slot_is_reused_under_a_new_token_and_the_old_token_finds_nothing()
    {
        using CompletionPort port = new();
        using TcpPair pair = TcpPair.Create();
        RegistrationTable table = new(port.Core);
        Registration first = table.Allocate(pair.Server.SafeHandle, "first");
        Assert.True(first.TryMarkRemoved());
        table.Free(first);

        Registration second = table.Allocate(pair.Server.SafeHandle, "second");
        Assert.Equal(first.Slot, second.Slot);
        Assert.NotEqual(first.Token, second.Token);
        Assert.Null(table.Find(first.Token));
        Assert.Same(second, table.Find(second.Token));
    }

    [Fact]
    public void Tokens_stay_valid_across_growth()
    {
        using CompletionPort port = new();
        using TcpPair pair = TcpPair.Create();
        RegistrationTable table = new(port.Core);
        Registration[] registrations = Enumerable.Range(0, 1000).Select(i => table.Allocate(pair.Server.SafeHandle, i)).ToArray();
        Assert.Equal(1000, table.Count);
        Assert.All(registrations, r => Assert.Same(r, table.Find(r.Token)));
        Assert.Null(table.Find(new SlotToken(ulong.MaxValue)));
    }
}
