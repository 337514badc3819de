namespace SockNotify;

/// <summary>
/// One dequeued completion packet, the .NET shape of Win32's <c>OVERLAPPED_ENTRY</c>: a socket notification, a packet
/// posted with <see cref="CompletionPort.PostQueuedCompletionStatus"/>, or (later) an I/O completion.
/// </summary>
public readonly struct CompletionEntry
{
    internal CompletionEntry(object? completionKey, uint bytesTransferred, object? context)
    {
        CompletionKey = completionKey;
        BytesTransferred = bytesTransferred;
        Context = context;
    }

    /// <summary>The registration's completion key, or the key given to the post.</summary>
    public object? CompletionKey { get; }

    /// <summary>For a socket notification, the events as an integer (see <see cref="Events"/>); for a post, its byte count.</summary>
    public uint BytesTransferred { get; }

    /// <summary>The per-operation context (Win32's <c>lpOverlapped</c>): the post's context; null for notifications.</summary>
    public object? Context { get; }

    /// <summary>
    /// The events of a socket notification (Winsock's <c>SocketNotificationRetrieveEvents</c>): the
    /// <see cref="BytesTransferred"/> field read as <see cref="SocketNotifyEvents"/>. Meaningless for other packets.
    /// </summary>
    public SocketNotifyEvents Events => (SocketNotifyEvents)BytesTransferred;
}
