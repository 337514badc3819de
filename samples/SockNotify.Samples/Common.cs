using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace SockNotify.Samples;

/// <summary>
/// The seed's common code: its constants, <c>SERVER_CONTEXT</c> (a port and a listening socket) and the client thread
/// that connects, sends <c>transmitCount</c> payloads and disconnects.
/// Fixed from the seed: the server listens on an ephemeral loopback port instead of the placeholder 0xffff, the
/// client closes its own socket (the seed called <c>closesocket(INVALID_SOCKET)</c>), and each payload carries its
/// client and sequence number instead of a constant, so that a server can prove every byte arrived exactly once.
/// </summary>
public static class Common
{
    /// <summary>CLIENT_LOOP_COUNT: payloads per client.</summary>
    public const int ClientLoopCount = 10;

    /// <summary>MAX_TIMEOUT, in milliseconds: how long a server waits before it checks its state again.</summary>
    public const int MaxTimeout = 1000;

    /// <summary>The size of one payload: a 32-bit integer, like the seed's 0xdeadbeef.</summary>
    public const int PayloadSize = sizeof(uint);

    /// <summary>How long any scenario may take before it gives up and reports failure.</summary>
    public static readonly TimeSpan ScenarioDeadline = TimeSpan.FromSeconds(60);

    /// <summary>The payload a client sends: its index in the high half, the sequence number in the low half.</summary>
    public static uint Payload(int client, int sequence) => ((uint)client << 16) | (uint)sequence;

    /// <summary>Splits a received byte stream back into payloads; a stream that ends mid-payload is corrupt.</summary>
    /// <exception cref="InvalidDataException">The stream's length is not a whole number of payloads.</exception>
    public static IEnumerable<uint> Payloads(ReadOnlyMemory<byte> stream)
    {
        if (stream.Length % PayloadSize != 0)
        {
            throw new InvalidDataException($"{stream.Length % PayloadSize} stray bytes after {stream.Length / PayloadSize} payloads");
        }

        for (int offset = 0; offset < stream.Length; offset += PayloadSize)
        {
            yield return BinaryPrimitives.ReadUInt32LittleEndian(stream.Span[offset..]);
        }
    }

    /// <summary>Checks that <paramref name="received"/> holds each client's payloads exactly once, and nothing else.</summary>
    public static string? FindPayloadMismatch(IEnumerable<uint> received, int clients, int transmitCount)
    {
        Dictionary<uint, int> counts = [];
        foreach (uint payload in received)
        {
            counts[payload] = counts.GetValueOrDefault(payload) + 1;
        }

        for (int client = 0; client < clients; client++)
        {
            for (int sequence = 0; sequence < transmitCount; sequence++)
            {
                uint payload = Payload(client, sequence);
                if (counts.Remove(payload, out int count) && count == 1)
                {
                    continue;
                }

                return $"payload {sequence} of client {client} arrived {count} times";
            }
        }

        return counts.Count == 0 ? null : $"{counts.Count} unexpected payloads arrived";
    }

    /// <summary>CreateClientThread: a TCP client that connects, sends its payloads, shuts down and closes.</summary>
    public static Thread CreateClientThread(EndPoint server, int client, int transmitCount)
    {
        Thread thread = new(() =>
        {
            try
            {
                using Socket clientSocket = new(server.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                clientSocket.Connect(server);
                byte[] payload = new byte[PayloadSize];
                for (int index = 0; index < transmitCount; index++)
                {
                    BinaryPrimitives.WriteUInt32LittleEndian(payload, Payload(client, index));
                    clientSocket.Send(payload);
                }

                clientSocket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException)
            {
                // As in the seed, a failed client just ends; the server's verification reports the missing data.
            }
        })
        { IsBackground = true, Name = $"client {client}" };
        thread.Start();
        return thread;
    }
}

/// <summary>SERVER_CONTEXT: the completion port and a listening socket on an ephemeral loopback port.</summary>
public sealed class ServerContext : IDisposable
{
    private ServerContext(CompletionPort ioCompletionPort, Socket listenerSocket)
    {
        IoCompletionPort = ioCompletionPort;
        ListenerSocket = listenerSocket;
    }

    /// <summary>The port every scenario's notifications go through.</summary>
    public CompletionPort IoCompletionPort { get; }

    /// <summary>The listening socket, bound to 127.0.0.1 on a port the system chose.</summary>
    public Socket ListenerSocket { get; }

    /// <summary>CreateServerContext.</summary>
    public static ServerContext Create()
    {
        CompletionPort port = new();
        Socket listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            listener.Listen();
            return new ServerContext(port, listener);
        }
        catch
        {
            listener.Dispose();
            port.Dispose();
            throw;
        }
    }

    /// <summary>DestroyServerContext.</summary>
    public void Dispose()
    {
        ListenerSocket.Dispose();
        IoCompletionPort.Dispose();
    }
}
