using System.Net;
using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

[Collection(nameof(DescriptorSensitive))]
public class CloseTests
{
    [Theory, BothBackends]
    public void Disposing_a_registered_socket_deregisters_it_without_a_Remove(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        using TcpPair pair = TcpPair.Create();
        Key key = new("server");
        port.Register(Items.Enable(pair.Server, key, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        pair.Server.Dispose();
        pair.Client.Send([1]);

        Expect.Nothing(port, 200);
        Assert.Equal(SocketNotifyResult.SocketClosed, port.Apply(Items.Remove(pair.Server)));
        Expect.Nothing(port);
        Assert.Equal(0, port.RegistrationCount);
    }

    [Theory, BothBackends]
    public void A_new_socket_that_reuses_a_closed_sockets_descriptor_gets_no_stale_notification(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Key oldKey = new("old");
        Key newKey = new("new");
        TcpPair old = TcpPair.Create();
        port.Register(Items.Enable(old.Server, oldKey, SocketNotifyEvents.In | SocketNotifyEvents.Out, SocketNotifyTrigger.Level));
        old.Client.Send([1]);
        nint descriptor = old.Server.SafeHandle.DangerousGetHandle();
        old.Dispose();

        List<Socket> opened = [];
        try
        {
            Socket reuse = OpenUntilDescriptorIsReused(descriptor, opened);
            port.Register(Items.Enable(reuse, newKey, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
            Assert.DoesNotContain(Expect.All(port, 200), e => ReferenceEquals(e.CompletionKey, oldKey));

            SendDatagramTo(reuse);
            List<CompletionEntry> seen = Expect.Events(port, (newKey, SocketNotifyEvents.In));
            Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, oldKey));
        }
        finally
        {
            opened.ForEach(s => s.Dispose());
        }
    }

    /// <summary>
    /// When the socket's file outlives the <see cref="Socket"/> (a dup, or a fork), closing the Socket does not end
    /// the kernel registration, and the kernel keeps reporting it under the old token. None of that may surface, even
    /// after the descriptor number has been reused by another registered socket.
    /// </summary>
    [Theory, BothBackends]
    public void A_closed_socket_whose_file_lives_on_delivers_nothing_even_after_its_number_is_reused(CompletionPortBackend backend)
    {
        using CompletionPort port = Ports.Create(backend);
        Key oldKey = new("old");
        TcpPair old = TcpPair.Create();
        port.Register(Items.Enable(old.Server, oldKey, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        nint descriptor = old.Server.SafeHandle.DangerousGetHandle();
        int duplicate = Libc.Dup(descriptor);
        Assert.True(duplicate >= 0);
        List<Socket> opened = [];
        try
        {
            old.Server.Dispose();
            old.Client.Send([1]); // The old connection is readable, and the kernel still watches its file.
            Expect.Nothing(port, 200);

            Socket reuse = OpenUntilDescriptorIsReused(descriptor, opened);
            Key newKey = new("new");
            port.Register(Items.Enable(reuse, newKey, SocketNotifyEvents.In, SocketNotifyTrigger.Level));
            SendDatagramTo(reuse);
            List<CompletionEntry> seen = Expect.Events(port, (newKey, SocketNotifyEvents.In));
            Assert.DoesNotContain(seen, e => ReferenceEquals(e.CompletionKey, oldKey));
        }
        finally
        {
            Libc.Close(duplicate);
            old.Dispose();
            opened.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Opens bound UDP sockets until one gets <paramref name="descriptor"/> (the lowest free number, so at once or nearly).</summary>
    private static Socket OpenUntilDescriptorIsReused(nint descriptor, List<Socket> opened)
    {
        for (int attempt = 0; attempt < 50; attempt++)
        {
            Socket socket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            opened.Add(socket);
            if (socket.SafeHandle.DangerousGetHandle() == descriptor)
            {
                socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                return socket;
            }
        }

        Assert.Fail($"No new socket reused descriptor {descriptor}.");
        return null!;
    }

    private static void SendDatagramTo(Socket receiver)
    {
        using Socket sender = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        sender.SendTo(new byte[] { 1 }, receiver.LocalEndPoint!);
    }

    [Fact]
    public void Registrations_of_sockets_closed_without_Remove_are_reclaimed()
    {
        using CompletionPort port = new();
        for (int i = 0; i < 1000; i++)
        {
            using TcpPair pair = TcpPair.Create();
            port.Register(Items.Enable(pair.Server, new Key("k"), SocketNotifyEvents.In, SocketNotifyTrigger.Level));
        }

        // Closed registrations are swept whenever the table would otherwise grow, so it stays at its first size.
        Assert.InRange(port.RegistrationCount, 0, 64);
    }
}
