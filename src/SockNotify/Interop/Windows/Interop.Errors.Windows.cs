namespace SockNotify;

internal static partial class Interop
{
    /// <summary>The Win32 error codes the Windows engine tells apart (<c>GetLastError</c> after a failed call).</summary>
    internal static class Win32Error
    {
        internal const int ERROR_SUCCESS = 0;
        internal const int ERROR_INVALID_HANDLE = 6;
        internal const int ERROR_NOT_ENOUGH_MEMORY = 8;
        internal const int ERROR_INVALID_PARAMETER = 87;
        internal const int WAIT_TIMEOUT = 258;
        internal const int ERROR_OPERATION_ABORTED = 995;
        internal const int ERROR_IO_PENDING = 997;
        internal const int ERROR_NOT_FOUND = 1168;

        /// <summary>
        /// <c>GetQueuedCompletionStatusEx</c> on a port whose handle another thread closed: the wait ends for good.
        /// </summary>
        internal const int ERROR_ABANDONED_WAIT_0 = 735;
    }
}
