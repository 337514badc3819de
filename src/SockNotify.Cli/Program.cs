using System.CommandLine;
using SockNotify.Cli;

RootCommand root = new("socknotify: Winsock-style socket state notifications on a .NET completion port.")
{
    DemoCommand.Create(),
    EchoCommand.Create(),
    HttpCommand.Create(),
    LoadCommand.Create(),
    BenchCommand.Create(),
    SoakCommand.Create(),
};

// Redirected output (CI, a file) has no terminal width; give tables room rather than fold every cell.
if (Console.IsOutputRedirected)
{
    Spectre.Console.AnsiConsole.Profile.Width = 200;
}

ParseResult parsed = root.Parse(args);
if (parsed.Errors.Count > 0)
{
    foreach (System.CommandLine.Parsing.ParseError error in parsed.Errors)
    {
        Console.Error.WriteLine($"socknotify: {error.Message}");
    }

    Console.Error.WriteLine("Run 'socknotify --help' for usage.");
    return ExitCodes.BadArguments;
}

// The echo and http commands handle SIGINT and SIGTERM itself, to shut down cleanly; the parser must not terminate the process.
return await parsed.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }).ConfigureAwait(false);
