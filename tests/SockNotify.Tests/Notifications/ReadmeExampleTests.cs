using System.Net.Sockets;
using SockNotify.Tests.Support;

namespace SockNotify.Tests.Notifications;

/// <summary>README.md's example, kept compiling and working here.</summary>
public class ReadmeExampleTests
{
    [Fact]
    public void The_poll_replacement_example_receives_the_clients_data()
    {
        using Socket listener = Loopback.Listener();
        listener.Blocking = true;
        using Socket client = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        client.Connect(listener.LocalEndPoint!);
        client.Send([0xef, 0xbe, 0xad, 0xde]);
        byte[] buffer = new byte[512];
        int received = 0;

        // From README.md:
        using CompletionPort port = new();
        using Socket accepted = listener.Accept();
        accepted.Blocking = false;

        SocketNotifyRegistration registration = new()
        {
            CompletionKey = accepted,
            EventFilter = SocketNotifyEvents.In | SocketNotifyEvents.Hangup,
            Operation = SocketNotifyOperation.Enable,
            TriggerFlags = SocketNotifyTrigger.Level,
            Socket = accepted,
        };
        port.ProcessSocketNotifications(ref registration);
        Assert.Equal(SocketNotifyResult.Success, registration.RegistrationResult);

        CompletionEntry[] notifications = new CompletionEntry[1];
        if (port.GetQueuedCompletionStatus(notifications, out int count, 1000) == CompletionWaitResult.Success)
        {
            SocketNotifyEvents events = notifications[0].Events;
            Socket current = (Socket)notifications[0].CompletionKey!;
            if ((events & SocketNotifyEvents.In) != 0)
            {
                received = current.Receive(buffer, SocketFlags.None, out SocketError error);
                Assert.Equal(SocketError.Success, error);
            }
        }

        Assert.Equal(4, received);
    }
}
