using System.Diagnostics;
using System.Net.Sockets;

namespace SockNotify.Samples;

/// <summary>
/// The seed's "simple poll replacement": a single thread, a persistent level registration for In and Hangup on one
/// accepted connection, notifications dequeued with GetQueuedCompletionStatus until the client hangs up.
/// Fixed from the seed: a dequeue timeout means "wait again", not failure; on Hangup the remaining data is read before
/// leaving (a level In and Hangup can arrive together); the received bytes are checked, not just counted.
/// </summary>
public static class PollReplacement
{
    /// <summary>Runs the scenario; <paramref name="log"/> receives the transcript.</summary>
    public static ScenarioResult Run(Action<string> log)
    {
        Stopwatch elapsed = Stopwatch.StartNew();
        using ServerContext serverContext = ServerContext.Create();
        Thread client = Common.CreateClientThread(serverContext.ListenerSocket.LocalEndPoint!, client: 0, Common.ClientLoopCount);

        // Bounded, unlike the seed's accept: a client that cannot connect must not hang the sample.
        if (!serverContext.ListenerSocket.Poll(Common.ScenarioDeadline, SelectMode.SelectRead))
        {
            return new ScenarioResult("poll", false, 0, elapsed.Elapsed, "the client never connected");
        }

        using Socket tcpAcceptSocket = serverContext.ListenerSocket.Accept();
        tcpAcceptSocket.Blocking = false;

        // Register the accepted connection.
        SocketNotifyRegistration registration = new()
        {
            CompletionKey = tcpAcceptSocket,
            EventFilter = SocketNotifyEvents.In | SocketNotifyEvents.Hangup,
            Operation = SocketNotifyOperation.Enable,
            TriggerFlags = SocketNotifyTrigger.Level,
            Socket = tcpAcceptSocket,
        };
        serverContext.IoCompletionPort.ProcessSocketNotifications(ref registration);
        if (registration.RegistrationResult != SocketNotifyResult.Success)
        {
            return Failed($"registration failed: {registration.RegistrationResult}");
        }

        // Keep receiving data until the client disconnects.
        CompletionEntry[] notification = new CompletionEntry[1];
        MemoryStream received = new();
        byte[] dataBuffer = new byte[512];
        while (true)
        {
            if (elapsed.Elapsed > Common.ScenarioDeadline)
            {
                return Failed("the client never hung up");
            }

            log("Waiting for client action...");
            CompletionWaitResult wait = serverContext.IoCompletionPort.GetQueuedCompletionStatus(notification, out _, Common.MaxTimeout);
            if (wait == CompletionWaitResult.TimedOut)
            {
                continue;
            }

            // The completion key is the socket supplied above (a context object is the more typical choice).
            SocketNotifyEvents events = notification[0].Events;
            Socket currentSocket = (Socket)notification[0].CompletionKey!;
            if ((events & SocketNotifyEvents.Err) != 0)
            {
                // Obtain the detailed error with a non-blocking receive.
                currentSocket.Receive(dataBuffer, SocketFlags.None, out SocketError error);
                return Failed($"the socket was reset or failed: {error}");
            }

            if ((events & SocketNotifyEvents.In) != 0)
            {
                int count = currentSocket.Receive(dataBuffer, SocketFlags.None, out SocketError error);
                if (error is not (SocketError.Success or SocketError.WouldBlock))
                {
                    return Failed($"receive failed: {error}");
                }

                received.Write(dataBuffer, 0, count);
                log($"Received client data ({count} bytes).");
            }

            if ((events & SocketNotifyEvents.Hangup) != 0)
            {
                int count;
                while ((count = currentSocket.Receive(dataBuffer, SocketFlags.None, out SocketError error)) > 0 && error == SocketError.Success)
                {
                    received.Write(dataBuffer, 0, count);
                }

                log("Client hung up. Exiting.");
                break;
            }
        }

        client.Join();
        SocketNotifyResult deregistered = serverContext.IoCompletionPort.DeregisterAndWait(tcpAcceptSocket);
        string? mismatch = Common.FindPayloadMismatch(Common.Payloads(received.ToArray()), clients: 1, Common.ClientLoopCount);
        if (deregistered != SocketNotifyResult.Success)
        {
            return Failed($"deregistration failed: {deregistered}");
        }

        return mismatch is null
            ? new ScenarioResult("poll", true, Common.ClientLoopCount, elapsed.Elapsed, $"{Common.ClientLoopCount} payloads received intact, then Hangup")
            : Failed(mismatch);

        ScenarioResult Failed(string why) => new("poll", false, 0, elapsed.Elapsed, why);
    }
}
