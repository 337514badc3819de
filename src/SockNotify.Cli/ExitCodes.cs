namespace SockNotify.Cli;

/// <summary>The process exit codes of <c>socknotify</c>.</summary>
internal static class ExitCodes
{
    /// <summary>Everything ran and verified.</summary>
    public const int Success = 0;

    /// <summary>A run failed: a scenario did not verify, or an address could not be bound.</summary>
    public const int Failure = 1;

    /// <summary>The command line could not be parsed.</summary>
    public const int BadArguments = 2;
}
