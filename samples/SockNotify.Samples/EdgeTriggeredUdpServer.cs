using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace SockNotify.Samples;

/// <summary>
/// The seed's edge-triggered UDP server: the socket is registered before it is bound, so no datagram can arrive
/// unnoticed, and every In notification is answered by receiving until WouldBlock, or the next edge may never come.
/// UDP has no connection, so no Hangup is ever delivered.
/// Fixed from the seed: the client really is a UDP client (the seed assumed one), a dequeue timeout means "wait
/// again", and each datagram's content is checked.
/// </summary>
public static class EdgeTriggeredUdpServer
{
    /// <summary>Runs the scenario; <paramref name="log"/> receives the transcript.</summary>
    public static ScenarioResult Run(Action<string> log)
    {
        Stopwatch elapsed = Stopwatch.StartNew();
        List<uint> datagrams = [];
        using CompletionPort ioCompletionPort = new();
        using Socket serverSocket = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);

        // Register before binding, so that data cannot become present before the registration.
        // Edge-triggered is not combined with one-shot: re-registering correctly would be hard.
        SocketNotifyRegistration registration = new()
        {
            CompletionKey = serverSocket,
            EventFilter = SocketNotifyEvents.In,
            Operation = SocketNotifyOperation.Enable,
            TriggerFlags = SocketNotifyTrigger.Edge,
            Socket = serverSocket,
        };
        ioCompletionPort.ProcessSocketNotifications(ref registration);
        if (registration.RegistrationResult != SocketNotifyResult.Success)
        {
            return Failed($"registration failed: {registration.RegistrationResult}");
        }

        // Non-blocking: the data must be drained before a rising edge can be observed again.
        serverSocket.Blocking = false;
        serverSocket.Bind(new IPEndPoint(IPAddress.Loopback, 0));

        Thread client = CreateUdpClientThread(serverSocket.LocalEndPoint!, Common.ClientLoopCount);

        bool hangupSeen = false;
        CompletionEntry[] notification = new CompletionEntry[1];
        byte[] dataBuffer = new byte[512];
        while (datagrams.Count < Common.ClientLoopCount)
        {
            if (elapsed.Elapsed > Common.ScenarioDeadline)
            {
                return Failed($"only {datagrams.Count} datagrams arrived");
            }

            log("Waiting for client action...");
            if (ioCompletionPort.GetQueuedCompletionStatus(notification, out _, Common.MaxTimeout) == CompletionWaitResult.TimedOut)
            {
                continue;
            }

            SocketNotifyEvents events = notification[0].Events;
            Socket currentSocket = (Socket)notification[0].CompletionKey!;
            hangupSeen |= (events & SocketNotifyEvents.Hangup) != 0;
            if ((events & SocketNotifyEvents.Err) != 0)
            {
                currentSocket.Receive(dataBuffer, SocketFlags.None, out SocketError error);
                return Failed($"socket error: {error}");
            }

            if ((events & SocketNotifyEvents.In) == 0)
            {
                continue;
            }

            // Keep receiving until the read would block, otherwise the edge may not have been reset.
            while (true)
            {
                int count = currentSocket.Receive(dataBuffer, SocketFlags.None, out SocketError error);
                if (error == SocketError.WouldBlock)
                {
                    break;
                }

                if (error != SocketError.Success)
                {
                    return Failed($"receive failed: {error}");
                }

                datagrams.AddRange(Common.Payloads(dataBuffer.AsMemory(0, count)));
                log($"Received client datagram ({count} bytes).");
            }
        }

        log("Received all data. Exiting...");
        client.Join();
        SocketNotifyResult deregistered = ioCompletionPort.DeregisterAndWait(serverSocket);
        string? mismatch = Common.FindPayloadMismatch(datagrams, clients: 1, Common.ClientLoopCount)
            ?? (hangupSeen ? "a UDP socket reported Hangup" : null)
            ?? (deregistered != SocketNotifyResult.Success ? $"deregistration failed: {deregistered}" : null);
        return mismatch is null
            ? new ScenarioResult("edge-udp", true, datagrams.Count, elapsed.Elapsed, $"{datagrams.Count} datagrams received intact, no Hangup")
            : Failed(mismatch);

        ScenarioResult Failed(string why) => new("edge-udp", false, datagrams.Count, elapsed.Elapsed, why);
    }

    private static Thread CreateUdpClientThread(EndPoint server, int transmitCount)
    {
        Thread thread = new(() =>
        {
            using Socket clientSocket = new(server.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            byte[] payload = new byte[Common.PayloadSize];
            for (int index = 0; index < transmitCount; index++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(payload, Common.Payload(0, index));
                clientSocket.SendTo(payload, server);
            }
        })
        { IsBackground = true, Name = "udp client" };
        thread.Start();
        return thread;
    }
}
