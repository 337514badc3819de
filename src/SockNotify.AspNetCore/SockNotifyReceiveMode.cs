namespace SockNotify.AspNetCore;

/// <summary>How a connection receives: into the port's pool, or straight into its input pipe.</summary>
public enum SockNotifyReceiveMode
{
    /// <summary>
    /// A pooled receive (<see cref="CompletionPort.ReceivePooled"/>) takes a buffer of the port's pool only when data
    /// arrives, so an idle connection holds no buffer; the bytes are copied into the input pipe and the buffer goes back
    /// at once. The counterpart of the Sockets transport's <c>WaitForDataBeforeAllocatingBuffer</c>, in one operation.
    /// </summary>
    Pooled,

    /// <summary>
    /// Each receive waits in a block of the input pipe, so nothing is copied, but every idle connection holds a block
    /// (the Sockets transport with <c>WaitForDataBeforeAllocatingBuffer</c> false).
    /// </summary>
    Direct,
}
