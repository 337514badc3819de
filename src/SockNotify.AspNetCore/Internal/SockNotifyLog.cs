using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace SockNotify.AspNetCore.Internal;

/// <summary>
/// The transport's log events. Events that the Sockets transport also has keep its event ids, names and messages, so
/// filters and dashboards written for it work unchanged; the others start at 100. Nothing here is on the per-request
/// path unless Debug is enabled for the category.
/// </summary>
internal static partial class SockNotifyLog
{
    [LoggerMessage(4, LogLevel.Debug, @"Connection id ""{ConnectionId}"" paused.", EventName = "ConnectionPause")]
    public static partial void ConnectionPause(ILogger logger, string connectionId);

    [LoggerMessage(5, LogLevel.Debug, @"Connection id ""{ConnectionId}"" resumed.", EventName = "ConnectionResume")]
    public static partial void ConnectionResume(ILogger logger, string connectionId);

    [LoggerMessage(6, LogLevel.Debug, @"Connection id ""{ConnectionId}"" received FIN.", EventName = "ConnectionReadFin")]
    public static partial void ConnectionReadFin(ILogger logger, string connectionId);

    [LoggerMessage(7, LogLevel.Debug, @"Connection id ""{ConnectionId}"" sending FIN because: ""{Reason}""", EventName = "ConnectionWriteFin")]
    public static partial void ConnectionWriteFin(ILogger logger, string connectionId, string reason);

    [LoggerMessage(8, LogLevel.Debug, @"Connection id ""{ConnectionId}"" sending RST because: ""{Reason}""", EventName = "ConnectionWriteRst")]
    public static partial void ConnectionWriteRst(ILogger logger, string connectionId, string reason);

    [LoggerMessage(14, LogLevel.Debug, @"Connection id ""{ConnectionId}"" communication error.", EventName = "ConnectionError")]
    public static partial void ConnectionError(ILogger logger, string connectionId, Exception ex);

    [LoggerMessage(19, LogLevel.Debug, @"Connection id ""{ConnectionId}"" reset.", EventName = "ConnectionReset")]
    public static partial void ConnectionReset(ILogger logger, string connectionId);

    [LoggerMessage(100, LogLevel.Warning, @"Accepting a connection failed with {SocketError}; accepting again in {PauseMilliseconds} ms.", EventName = "AcceptFailed")]
    public static partial void AcceptFailed(ILogger logger, SocketError socketError, int pauseMilliseconds);

    [LoggerMessage(101, LogLevel.Error, "An accepted connection could not be set up; it was closed.", EventName = "ConnectionSetupFailed")]
    public static partial void ConnectionSetupFailed(ILogger logger, Exception ex);

    [LoggerMessage(102, LogLevel.Error, "Work scheduled on an I/O queue threw.", EventName = "ScheduledWorkFailed")]
    public static partial void ScheduledWorkFailed(ILogger logger, Exception ex);

    [LoggerMessage(103, LogLevel.Error, @"Unexpected exception in the SockNotify connection ""{ConnectionId}"".", EventName = "UnexpectedException")]
    public static partial void UnexpectedException(ILogger logger, string connectionId, Exception ex);
}
