using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Operations;

public class OperationValidationTests
{
    [Fact]
    public void Operations_on_a_socket_not_associated_with_the_port_throw()
    {
        using CompletionPort port = new();
        using CompletionPort other = new();
        using TcpPair pair = TcpPair.Create();
        using TcpPair elsewhere = Ports.AssociatedPair(other, "other");

        Assert.Throws<InvalidOperationException>(() => port.Receive(pair.Server, new byte[1], SocketFlags.None, null));
        Assert.Throws<InvalidOperationException>(() => port.Send(elsewhere.Server, new byte[1], SocketFlags.None, null));
        Assert.False(port.CancelIo(elsewhere.Server));
    }

    [Fact]
    public void Associating_twice_or_with_a_second_port_throws()
    {
        using CompletionPort port = new();
        using CompletionPort other = new();
        using TcpPair pair = Ports.AssociatedPair(port, "key");

        Assert.Contains("already associated", Assert.Throws<InvalidOperationException>(() => port.Associate(pair.Server, "again")).Message);
        Assert.Throws<InvalidOperationException>(() => other.Associate(pair.Server, "other"));
    }

    [Fact]
    public void A_socket_registered_for_notifications_cannot_be_associated_and_the_reverse()
    {
        using CompletionPort port = new();
        using TcpPair registered = TcpPair.Create();
        using TcpPair associated = Ports.AssociatedPair(port, "key");
        SocketNotifyRegistration enable = new()
        {
            Socket = registered.Server, CompletionKey = "key", Operation = SocketNotifyOperation.Enable,
            EventFilter = SocketNotifyEvents.In, TriggerFlags = SocketNotifyTrigger.Level,
        };
        port.ProcessSocketNotifications(ref enable);
        SocketNotifyRegistration enableAssociated = enable with { Socket = associated.Server };

        Assert.Throws<InvalidOperationException>(() => port.Associate(registered.Server, "key"));
        port.ProcessSocketNotifications(ref enableAssociated);
        Assert.Equal(SocketNotifyResult.InvalidRegistration, enableAssociated.RegistrationResult);
    }

    [Theory, BothBackends]
    public void Bad_arguments_throw_before_anything_starts(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = Ports.AssociatedPair(port, "key");

        Assert.Throws<ArgumentNullException>(() => port.Associate(null!, null));
        Assert.Throws<ArgumentNullException>(() => port.Receive(null!, new byte[1], SocketFlags.None, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => port.Receive(pair.Server, new byte[1], SocketFlags.Broadcast, null));
        Assert.Throws<ArgumentOutOfRangeException>(() => port.Send(pair.Server, new byte[1], SocketFlags.Peek, null));
        Assert.Throws<ArgumentNullException>(() => port.Connect(pair.Server, null!, null));
        Assert.Throws<ArgumentException>(() => port.Connect(pair.Server, new DnsEndPoint("localhost", 80), null));
        Assert.Throws<ArgumentNullException>(() => port.ReceiveFrom(pair.Server, new byte[1], SocketFlags.None, null!, null));
        Assert.Equal(0, port.OperationsInUse);
        Expect.Nothing(port, 50);
    }

    [Theory, BothBackends]
    public void A_disposed_socket_cannot_be_associated_and_its_operations_do_not_start(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        TcpPair pair = Ports.AssociatedPair(port, "key");
        pair.Dispose();

        Assert.Throws<ObjectDisposedException>(() => port.Associate(pair.Client, null));
        Assert.Equal(SocketError.OperationAborted, port.Send(pair.Server, new byte[1], SocketFlags.None, null));
        Expect.Nothing(port, 50);
    }

    [Fact]
    public void The_environment_variable_selects_the_epoll_backend()
    {
        string? before = Environment.GetEnvironmentVariable("SOCKNOTIFY_IO_URING");
        try
        {
            Environment.SetEnvironmentVariable("SOCKNOTIFY_IO_URING", "0");
            using CompletionPort disabled = new();
            using CompletionPort forced = new(new CompletionPortOptions { Backend = CompletionPortBackend.IoUring });
            Environment.SetEnvironmentVariable("SOCKNOTIFY_IO_URING", null);
            using CompletionPort automatic = new();

            Assert.Equal(CompletionPortBackend.Epoll, disabled.Backend);
            Assert.Equal(CompletionPortBackend.IoUring, forced.Backend); // An explicit choice wins.
            Assert.Equal(CompletionPortBackend.IoUring, automatic.Backend); // This machine allows io_uring.
        }
        finally
        {
            Environment.SetEnvironmentVariable("SOCKNOTIFY_IO_URING", before);
        }
    }
}
