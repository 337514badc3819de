namespace SockNotify;

/// <summary>How a dequeue ended.</summary>
public enum CompletionWaitResult
{
    /// <summary>At least one entry was dequeued, or no entries were asked for.</summary>
    Success = 0,

    /// <summary>The timeout elapsed with nothing to dequeue. Not an error: wait again.</summary>
    TimedOut,

    /// <summary>The port was disposed while the caller waited; nothing was dequeued. Later calls throw.</summary>
    PortClosed,
}
