using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace SockNotify.AspNetCore.Tests.Support;

/// <summary>How a connection ended, as its client saw it.</summary>
public enum ConnectionEnd
{
    Fin,
    Reset,
}

/// <summary>
/// HTTP/1.1 over a plain socket, for what HttpClient hides: pipelining, half-closes, resets, and when the server's
/// end arrives.
/// </summary>
internal sealed class RawHttpConnection : IDisposable
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RawHttpConnection(Socket socket)
    {
        Socket = socket;
    }

    public Socket Socket { get; }

    public static async Task<RawHttpConnection> ConnectAsync(EndPoint endPoint)
    {
        Socket socket = endPoint is UnixDomainSocketEndPoint
            ? new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified)
            : new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using CancellationTokenSource timeout = new(TestServer.Patience);
        await socket.ConnectAsync(endPoint, timeout.Token);
        return new RawHttpConnection(socket);
    }

    public static Task<RawHttpConnection> ConnectAsync(IPAddress address, int port) => ConnectAsync(new IPEndPoint(address, port));

    public async Task SendAsync(string text) => await SendAsync(Encoding.ASCII.GetBytes(text));

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        using CancellationTokenSource timeout = new(TestServer.Patience);
        while (!bytes.IsEmpty)
        {
            int sent = await Socket.SendAsync(bytes, SocketFlags.None, timeout.Token);
            bytes = bytes[sent..];
        }
    }

    /// <summary>Reads one response (a Content-Length or chunked body): its status code and body.</summary>
    public async Task<(int Status, byte[] Body)> ReadResponseAsync()
    {
        string head = Encoding.ASCII.GetString(await ReadUntilAsync("\r\n\r\n"u8.ToArray()));
        string[] lines = head.Split("\r\n");
        int status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        Dictionary<string, string> headers = lines.Skip(1).Where(line => line.Length > 0).Select(line => line.Split(':', 2))
            .ToDictionary(parts => parts[0].Trim(), parts => parts[1].Trim(), StringComparer.OrdinalIgnoreCase);
        if (headers.TryGetValue("Transfer-Encoding", out string? encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            using MemoryStream body = new();
            while (true)
            {
                string sizeLine = Encoding.ASCII.GetString(await ReadUntilAsync("\r\n"u8.ToArray()));
                int size = int.Parse(sizeLine.Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                body.Write(await ReadExactlyAsync(size));
                await ReadUntilAsync("\r\n"u8.ToArray());
                if (size == 0)
                {
                    return (status, body.ToArray());
                }
            }
        }

        int length = headers.TryGetValue("Content-Length", out string? value) ? int.Parse(value, CultureInfo.InvariantCulture) : 0;
        return (status, await ReadExactlyAsync(length));
    }

    /// <summary>The bytes up to <paramref name="delimiter"/>, which is consumed and not returned.</summary>
    private async Task<byte[]> ReadUntilAsync(byte[] delimiter)
    {
        int at;
        while ((at = _buffer.AsSpan(_start, _end - _start).IndexOf(delimiter)) < 0)
        {
            if (!await FillAsync())
            {
                throw new IOException("The connection ended inside a response.");
            }
        }

        byte[] bytes = _buffer.AsSpan(_start, at).ToArray();
        _start += at + delimiter.Length;
        return bytes;
    }

    private async Task<byte[]> ReadExactlyAsync(int length)
    {
        byte[] bytes = new byte[length];
        int copied = 0;
        while (copied < length)
        {
            if (_start == _end && !await FillAsync())
            {
                throw new IOException("The connection ended inside a response's body.");
            }

            int count = Math.Min(length - copied, _end - _start);
            Array.Copy(_buffer, _start, bytes, copied, count);
            _start += count;
            copied += count;
        }

        return bytes;
    }

    /// <summary>Waits for the server to end the connection, reading (and dropping) anything before the end.</summary>
    public async Task<ConnectionEnd> ReadToEndAsync(TimeSpan within)
    {
        using CancellationTokenSource timeout = new(within);
        try
        {
            while (await Socket.ReceiveAsync(_buffer.AsMemory(), SocketFlags.None, timeout.Token) > 0)
            {
            }

            return ConnectionEnd.Fin;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return ConnectionEnd.Reset;
        }
    }

    /// <summary>Closes with RST: linger on with a zero timeout.</summary>
    public void Reset()
    {
        Socket.LingerState = new LingerOption(true, 0);
        Socket.Dispose();
    }

    public void Dispose() => Socket.Dispose();

    private async Task<bool> FillAsync()
    {
        if (_start > 0)
        {
            Array.Copy(_buffer, _start, _buffer, 0, _end - _start);
            _end -= _start;
            _start = 0;
        }

        if (_end == _buffer.Length)
        {
            throw new InvalidOperationException("A response head longer than the buffer.");
        }

        using CancellationTokenSource timeout = new(TestServer.Patience);
        int read = await Socket.ReceiveAsync(_buffer.AsMemory(_end), SocketFlags.None, timeout.Token);
        _end += read;
        return read > 0;
    }
}
