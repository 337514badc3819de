using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SockNotify.Tests;

public class InteropLayoutTests
{
    [Fact]
    public void Epoll_event_has_the_packed_x86_64_kernel_layout()
    {
        Assert.Equal(Architecture.X64, RuntimeInformation.ProcessArchitecture);
        Assert.Equal(12, Unsafe.SizeOf<Interop.Epoll.EpollEvent>());
        Assert.Equal(4, (int)Marshal.OffsetOf<Interop.Epoll.EpollEvent>(nameof(Interop.Epoll.EpollEvent.Data)));
    }
}
