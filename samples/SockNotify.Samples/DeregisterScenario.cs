using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SockNotify.Samples;

/// <summary>
/// The seed's DeregisterAndWait helper, as the library's <see cref="CompletionPort.DeregisterAndWait"/>, used where the
/// seed's version must not be: with several sockets registered. The seed's loop dequeued and dropped every
/// notification until its Remove arrived, so other sockets' notifications were lost (fatally, for edge triggers).
/// Here three UDP sockets are registered edge-triggered, all three receive a datagram, one is deregistered, and the
/// other two must still get their single edge notification, while the deregistered one gets nothing more.
/// </summary>
public static class DeregisterScenario
{
    /// <summary>Runs the scenario; <paramref name="log"/> receives the transcript.</summary>
    public static ScenarioResult Run(Action<string> log)
    {
        Stopwatch elapsed = Stopwatch.StartNew();
        using CompletionPort ioCompletionPort = new();
        Socket[] sockets = Enumerable.Range(0, 3).Select(_ => new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp)).ToArray();
        try
        {
            foreach (Socket socket in sockets)
            {
                SocketNotifyRegistration registration = new()
                {
                    Socket = socket,
                    CompletionKey = socket,
                    EventFilter = SocketNotifyEvents.In,
                    Operation = SocketNotifyOperation.Enable,
                    TriggerFlags = SocketNotifyTrigger.Edge,
                };
                ioCompletionPort.ProcessSocketNotifications(ref registration);
                if (registration.RegistrationResult != SocketNotifyResult.Success)
                {
                    return Failed($"registration failed: {registration.RegistrationResult}");
                }

                socket.Blocking = false;
                socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            }

            using (Socket sender = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
            {
                foreach (Socket socket in sockets)
                {
                    sender.SendTo(new byte[Common.PayloadSize], socket.LocalEndPoint!);
                }
            }

            // Let every datagram land, so that every socket's edge has fired before the deregistration.
            Thread.Sleep(50);
            Socket deregistered = sockets[1];
            SocketNotifyResult result = ioCompletionPort.DeregisterAndWait(deregistered);
            log($"DeregisterAndWait: {result}");
            if (result != SocketNotifyResult.Success)
            {
                return Failed($"DeregisterAndWait failed: {result}");
            }

            // The two other sockets' edges must still be delivered, once each; nothing for the deregistered one.
            HashSet<Socket> pending = [sockets[0], sockets[2]];
            CompletionEntry[] notifications = new CompletionEntry[4];
            while (ioCompletionPort.GetQueuedCompletionStatus(notifications, out int count, 200) == CompletionWaitResult.Success)
            {
                foreach (CompletionEntry notification in notifications.AsSpan(0, count))
                {
                    Socket socket = (Socket)notification.CompletionKey!;
                    log($"Notification for socket {Array.IndexOf(sockets, socket)}: {notification.Events}");
                    if (socket == deregistered)
                    {
                        return Failed($"the deregistered socket got {notification.Events}");
                    }

                    if (!pending.Remove(socket))
                    {
                        return Failed($"socket {Array.IndexOf(sockets, socket)} was notified twice for one edge");
                    }
                }
            }

            if (pending.Count != 0)
            {
                return Failed($"{pending.Count} socket(s) lost their notification");
            }

            foreach (Socket socket in new[] { sockets[0], sockets[2] })
            {
                if (ioCompletionPort.DeregisterAndWait(socket) is not SocketNotifyResult.Success and var failed)
                {
                    return Failed($"deregistering socket {Array.IndexOf(sockets, socket)} failed: {failed}");
                }
            }

            return new ScenarioResult("deregister", true, 2, elapsed.Elapsed, "the other sockets' edge notifications survived; nothing after the deregistration");
        }
        finally
        {
            Array.ForEach(sockets, s => s.Dispose());
        }

        ScenarioResult Failed(string why) => new("deregister", false, 0, elapsed.Elapsed, why);
    }
}
