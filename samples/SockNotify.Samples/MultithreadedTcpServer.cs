using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;

namespace SockNotify.Samples;

/// <summary>
/// The seed's multithreaded TCP server: one port shared by many server threads, a persistent level registration on
/// the listener, one-shot level registrations on accepted sockets, re-armed in the thread's NEXT
/// ProcessSocketNotifications call together with the registrations of newly accepted sockets. A Hangup turns into a
/// Remove, and a socket's context is freed only when its Remove notification arrives. Shutdown is chained through
/// posted exit packets: each exiting thread posts the packet that wakes the next.
/// <para>Fixed from the seed: the server thread counter is incremented (the seed's creation loop never ended); the
/// listener is non-blocking, so a thread woken for a connection another thread took gets WouldBlock instead of
/// blocking in accept; the listener stays persistent instead of being re-armed as one-shot; a Hangup removes the
/// registration after the remaining data is read (the seed could ask for Remove|Enable in one operation); a
/// dequeue timeout is not an error; a connection whose registration fails still counts as finished, so the server
/// can exit; and every payload of every client is checked to have arrived exactly once.</para>
/// </summary>
public static class MultithreadedTcpServer
{
    /// <summary>CLIENT_THREAD_COUNT.</summary>
    public const int ClientThreadCount = 100;

    /// <summary>SERVER_THREAD_COUNT: deliberately more than the processors; the port spreads the work.</summary>
    public const int ServerThreadCount = 16;

    /// <summary>SERVER_DEQUEUE_COUNT: notifications one thread takes per call.</summary>
    private const int ServerDequeueCount = 3;

    /// <summary>SERVER_EXIT_KEY: the key of the posted packet that tells a server thread to exit.</summary>
    private static readonly object ServerExitKey = new();

    private const SocketNotifyTrigger OneShotLevel = SocketNotifyTrigger.OneShot | SocketNotifyTrigger.Level;

    /// <summary>Runs the scenario; <paramref name="log"/> receives the transcript.</summary>
    public static ScenarioResult Run(Action<string> log, int serverThreads = ServerThreadCount, int clientThreads = ClientThreadCount)
    {
        Stopwatch elapsed = Stopwatch.StartNew();
        using ServerContext commonContext = ServerContext.Create();
        ServerThreadContext serverContext = new(commonContext.IoCompletionPort, clientThreads);
        commonContext.ListenerSocket.Blocking = false;
        SocketContext listenContext = new(SocketKind.Listener, commonContext.ListenerSocket);

        // Register the listening socket so that the server threads are told of incoming connections.
        SocketNotifyRegistration registration = new()
        {
            CompletionKey = listenContext,
            EventFilter = SocketNotifyEvents.In,
            Operation = SocketNotifyOperation.Enable,
            TriggerFlags = SocketNotifyTrigger.Level | SocketNotifyTrigger.Persistent,
            Socket = listenContext.Socket,
        };
        commonContext.IoCompletionPort.ProcessSocketNotifications(ref registration);
        if (registration.RegistrationResult != SocketNotifyResult.Success)
        {
            return Failed($"listener registration failed: {registration.RegistrationResult}");
        }

        Thread[] servers = new Thread[serverThreads];
        for (int serverThreadCount = 0; serverThreadCount < servers.Length; serverThreadCount++)
        {
            servers[serverThreadCount] = new Thread(() => ServerThreadRoutine(serverContext, log)) { Name = $"server {serverThreadCount}" };
            servers[serverThreadCount].Start();
        }

        Thread[] clients = new Thread[clientThreads];
        for (int i = 0; i < clients.Length; i++)
        {
            clients[i] = Common.CreateClientThread(listenContext.Socket.LocalEndPoint!, i, Common.ClientLoopCount);
        }

        log($"Waiting for {servers.Length} server threads to exit...");
        bool allExited = servers.All(server => server.Join(Common.ScenarioDeadline - elapsed.Elapsed is { Ticks: > 0 } left ? left : TimeSpan.Zero));
        if (!allExited)
        {
            // Give up: tell every thread to exit, then wait for them so nothing outlives the port.
            serverContext.CancelServerThreads();
            IndicateServerThreadExit(commonContext.IoCompletionPort);
            Array.ForEach(servers, server => server.Join());
        }

        // Every accepted registration was removed by its thread; the listener's is removed here.
        SocketNotifyResult listenerRemoved = commonContext.IoCompletionPort.DeregisterAndWait(listenContext.Socket);
        string? mismatch = (allExited ? null : $"server threads did not finish: {serverContext.DeregisterCount} of {clientThreads} connections removed")
            ?? serverContext.FirstError
            ?? (serverContext.DeregisterCount == clientThreads ? null : $"{serverContext.DeregisterCount} of {clientThreads} registrations removed")
            ?? (listenerRemoved == SocketNotifyResult.Success ? null : $"listener deregistration failed: {listenerRemoved}")
            ?? Common.FindPayloadMismatch(serverContext.Received, clientThreads, Common.ClientLoopCount);
        long messages = serverContext.Received.Count;
        return mismatch is null
            ? new ScenarioResult("multithreaded", true, messages, elapsed.Elapsed,
                $"{clientThreads} clients x {Common.ClientLoopCount} payloads on {serverThreads} threads, each exactly once; {clientThreads} Removes")
            : Failed(mismatch);

        ScenarioResult Failed(string why) => new("multithreaded", false, serverContext?.Received.Count ?? 0, elapsed.Elapsed, why);
    }

    private static void ServerThreadRoutine(ServerThreadContext serverThreadContext, Action<string> log)
    {
        CompletionPort ioCompletionPort = serverThreadContext.IoCompletionPort;
        // Accepting a connection needs one registration, re-arming a connection another: at most one per notification.
        SocketNotifyRegistration[] registrationBuffer = new SocketNotifyRegistration[ServerDequeueCount * 2];
        int registrationCount = 0;
        CompletionEntry[] notifications = new CompletionEntry[ServerDequeueCount];
        byte[] dataBuffer = new byte[512];

        // Keep processing notifications until exit has been requested.
        while (!serverThreadContext.ShouldExit)
        {
            log($"Server thread {Environment.CurrentManagedThreadId} waiting for client action...");

            // Process notifications and re-register the one-shot registrations handled in the previous iteration.
            CompletionWaitResult wait = ioCompletionPort.ProcessSocketNotifications(
                registrationBuffer.AsSpan(0, registrationCount), Common.MaxTimeout, notifications, out int notificationCount);
            if (wait == CompletionWaitResult.PortClosed)
            {
                serverThreadContext.ReportError("the port closed under a server thread");
                break;
            }

            // Registrations that failed: the registrations are one-shot, so only this thread holds their contexts.
            foreach (ref SocketNotifyRegistration failed in registrationBuffer.AsSpan(0, registrationCount))
            {
                if (failed.RegistrationResult == SocketNotifyResult.Success || failed.CompletionKey is not SocketContext { Kind: SocketKind.Accepted } context)
                {
                    continue;
                }

                // Best effort: the registration is disabled or absent, so nothing else can reach the context.
                ioCompletionPort.DeregisterAndWait(context.Socket);
                serverThreadContext.ReportError($"registration failed: {failed.RegistrationResult}");
                serverThreadContext.Finish(context);
            }

            // Process the notifications, building the next batch of registrations as we go.
            registrationCount = 0;
            Array.Clear(registrationBuffer);
            foreach (CompletionEntry notification in notifications.AsSpan(0, notificationCount))
            {
                if (notification.CompletionKey == ServerExitKey)
                {
                    // Finish this batch (its Removes and re-arms matter), then leave and post the next exit packet.
                    serverThreadContext.CancelServerThreads();
                    continue;
                }

                SocketContext socketContext = (SocketContext)notification.CompletionKey!;
                SocketNotifyEvents events = notification.Events;
                switch (socketContext.Kind)
                {
                    case SocketKind.Listener:
                        // Accepting in response to notifications throttles acceptance; AcceptEx-style accepts scale further.
                        // Several threads may be woken for one connection: the losers get WouldBlock.
                        Socket? accepted = AcceptConnection(socketContext.Socket);
                        if (accepted is not null)
                        {
                            accepted.Blocking = false;
                            SocketContext acceptedContext = new(SocketKind.Accepted, accepted);
                            registrationBuffer[registrationCount++] = Rearm(acceptedContext);
                        }

                        break;

                    case SocketKind.Accepted:
                        if ((events & SocketNotifyEvents.Remove) != 0)
                        {
                            // The registration was removed: now, and only now, the context may go.
                            serverThreadContext.Finish(socketContext);
                            continue;
                        }

                        bool closed = (events & SocketNotifyEvents.Hangup) != 0
                            ? ReceiveAll(socketContext, dataBuffer) // The peer is gone: take what it sent, then remove.
                            : ReceiveOnce(socketContext, dataBuffer);
                        registrationBuffer[registrationCount++] = closed
                            ? new SocketNotifyRegistration { Socket = socketContext.Socket, CompletionKey = socketContext, Operation = SocketNotifyOperation.Remove }
                            : Rearm(socketContext);
                        break;
                }
            }
        }

        // Apply what is still pending (a last re-arm or Remove), then wake a remaining server thread.
        ioCompletionPort.ProcessSocketNotifications(registrationBuffer.AsSpan(0, registrationCount));
        IndicateServerThreadExit(ioCompletionPort);
        log($"Server thread {Environment.CurrentManagedThreadId} exited");
    }

    private static SocketNotifyRegistration Rearm(SocketContext context) => new()
    {
        Socket = context.Socket,
        CompletionKey = context,
        EventFilter = SocketNotifyEvents.In | SocketNotifyEvents.Hangup,
        Operation = SocketNotifyOperation.Enable,
        TriggerFlags = OneShotLevel,
    };

    private static Socket? AcceptConnection(Socket listenSocket)
    {
        try
        {
            return listenSocket.Accept();
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.WouldBlock or SocketError.ConnectionAborted or SocketError.ConnectionReset)
        {
            return null; // Another thread took it, or the peer gave up before it was accepted.
        }
        catch (SocketException)
        {
            // Out of descriptors or memory: the connection stays in the backlog and the listener stays readable, so
            // without a pause every thread would spin on it (libuv's test-emfile case). Pause, then let it report again.
            Thread.Sleep(AcceptErrorPause);
            return null;
        }
    }

    private static readonly TimeSpan AcceptErrorPause = TimeSpan.FromMilliseconds(50);

    /// <summary>One chunk per notification, as the seed does; returns true when the connection is over.</summary>
    private static bool ReceiveOnce(SocketContext context, byte[] dataBuffer)
    {
        int count = context.Socket.Receive(dataBuffer, SocketFlags.None, out SocketError error);
        if (error == SocketError.WouldBlock)
        {
            return false; // Spurious: another condition woke us. Re-arm.
        }

        context.Append(dataBuffer.AsSpan(0, count));
        return error != SocketError.Success || count == 0;
    }

    private static bool ReceiveAll(SocketContext context, byte[] dataBuffer)
    {
        while (!ReceiveOnce(context, dataBuffer))
        {
            if (context.Socket.Available == 0)
            {
                break;
            }
        }

        return true;
    }

    /// <summary>IndicateServerThreadExit: wakes one server thread, which passes the packet on when it exits.</summary>
    private static void IndicateServerThreadExit(CompletionPort ioCompletionPort) =>
        ioCompletionPort.PostQueuedCompletionStatus(ServerExitKey, 0, null);

    private enum SocketKind
    {
        Listener,
        Accepted,
    }

    /// <summary>SOCKET_CONTEXT: a header telling the socket kinds apart, so one port can serve several.</summary>
    private sealed class SocketContext(SocketKind kind, Socket socket)
    {
        private readonly ArrayBufferWriter<byte> _received = new();

        public SocketKind Kind { get; } = kind;

        public Socket Socket { get; } = socket;

        public void Append(ReadOnlySpan<byte> data) => _received.Write(data);

        public ReadOnlyMemory<byte> Received => _received.WrittenMemory;
    }

    /// <summary>SERVER_THREAD_CONTEXT: the state the server threads share.</summary>
    private sealed class ServerThreadContext(CompletionPort ioCompletionPort, int expectedConnections)
    {
        private readonly Lock _stateLock = new();
        private int _deregisterCount;
        private bool _shouldExit;

        public CompletionPort IoCompletionPort { get; } = ioCompletionPort;

        public ConcurrentBag<uint> Received { get; } = [];

        public string? FirstError { get; private set; }

        public int DeregisterCount
        {
            get
            {
                lock (_stateLock)
                {
                    return _deregisterCount;
                }
            }
        }

        public bool ShouldExit
        {
            get
            {
                lock (_stateLock)
                {
                    return _shouldExit;
                }
            }
        }

        /// <summary>DestroySocketContext, counting the connection as done; the last one asks the threads to exit.</summary>
        public void Finish(SocketContext context)
        {
            foreach (uint payload in Common.Payloads(context.Received))
            {
                Received.Add(payload);
            }

            context.Socket.Dispose();
            lock (_stateLock)
            {
                _deregisterCount++;
                _shouldExit |= _deregisterCount >= expectedConnections;
            }
        }

        public void ReportError(string error)
        {
            lock (_stateLock)
            {
                FirstError ??= error;
            }
        }

        /// <summary>CancelServerThreadsAsync.</summary>
        public void CancelServerThreads()
        {
            lock (_stateLock)
            {
                _shouldExit = true;
            }
        }
    }
}
