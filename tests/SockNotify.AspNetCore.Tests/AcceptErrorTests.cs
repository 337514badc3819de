using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using SockNotify.AspNetCore.Tests.Support;
using Errno = SockNotify.Interop.Errno;
using Fault = SockNotify.Interop.Fault;
using Faults = SockNotify.Interop.Faults;

namespace SockNotify.AspNetCore.Tests;

/// <summary>
/// The accept loop out of descriptors (EMFILE): AcceptAsync neither throws (which would stop Kestrel accepting for
/// good) nor retries at once (the connection is still in the backlog, so an accept made at once fails at once: a core
/// spinning), and serves again once descriptors are back. The failures come from the library's fault seam; the pause
/// runs on a clock the test holds, so "does not spin" is a count of accepts made during the pause, not a CPU reading.
/// The injectors see every descriptor: this assembly runs its tests one at a time.
/// </summary>
public sealed class AcceptErrorTests
{
    [Theory]
    [SockNotifyTransports]
    public async Task Out_of_descriptors_the_accept_loop_pauses_without_spinning_and_recovers(Transport transport)
    {
        ManualTimeProvider clock = new();
        SockNotifyTransportOptions options = new() { Backend = transport.Backend(), IOQueueCount = 1, TimeProvider = clock };
        await using IConnectionListener listener = await new SockNotifyTransportFactory(Options.Create(options), NullLoggerFactory.Instance)
            .BindAsync(new IPEndPoint(IPAddress.Loopback, 0));

        // On epoll, accept4 itself fails and the connection stays in the backlog, as a real EMFILE leaves it. io_uring
        // accepts in the kernel, beyond the seam: there the accepted descriptor cannot be made a Socket (EMFILE), which
        // fails that accept the same way (and closes that connection).
        Faults.Call failingCall = transport == Transport.SockNotifyEpoll ? Faults.Call.Accept : Faults.Call.WrapAccepted;
        int attempts = 0;
        bool outOfDescriptors = true;
        using IDisposable injector = Faults.Install((call, _) =>
        {
            if (call != failingCall)
            {
                return Fault.None;
            }

            Interlocked.Increment(ref attempts);
            return Volatile.Read(ref outOfDescriptors) ? Errno.EMFILE : Fault.None;
        });

        List<Socket> clients = [];
        try
        {
            ValueTask<ConnectionContext?> accepting = listener.AcceptAsync();
            for (int i = 0; i < 3; i++)
            {
                Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                try
                {
                    await client.ConnectAsync(listener.EndPoint); // Completed by the kernel's backlog, accepted or not.
                }
                catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset && failingCall == Faults.Call.WrapAccepted)
                {
                    // io_uring accepted it at once and the failed wrap closed it before the client saw its connect end.
                }
            }

            // The first failure: the loop pauses (a timer on the test's clock) and AcceptAsync goes on.
            Assert.True(await clock.WaitForTimersAsync(1, TestServer.Patience), "The failed accept did not pause.");
            Assert.Equal(1, Volatile.Read(ref attempts));

            // However long the pause lasts, no accept is tried during it, though connections wait in the backlog.
            await Task.Delay(300);
            Assert.Equal(1, Volatile.Read(ref attempts));
            Assert.False(accepting.IsCompleted, "AcceptAsync ended on a failed accept.");

            // The pause over, one accept is tried; it fails again, and the loop pauses again.
            Assert.Equal(1, clock.FirePending());
            Assert.True(await clock.WaitForTimersAsync(2, TestServer.Patience), "The second failed accept did not pause.");
            await Task.Delay(100);
            Assert.Equal(2, Volatile.Read(ref attempts));
            Assert.False(accepting.IsCompleted);

            // Descriptors are back: after the pause the next accept takes a waiting connection, and AcceptAsync returns it.
            Volatile.Write(ref outOfDescriptors, false);
            Assert.Equal(1, clock.FirePending());
            await using ConnectionContext? connection = await accepting.AsTask().WaitAsync(TestServer.Patience);
            Assert.NotNull(connection);
            Assert.Contains(connection.RemoteEndPoint, clients.Select(c => c.LocalEndPoint));
            Assert.Equal(3, Volatile.Read(ref attempts));
            Assert.Equal(2, clock.Created); // No pause after the accept that succeeded.
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }
}
