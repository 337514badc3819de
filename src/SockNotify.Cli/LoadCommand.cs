using System.CommandLine;
using System.Net;
using System.Text.Json;
using SockNotify.Cli.Bench;

namespace SockNotify.Cli;

/// <summary><c>socknotify load</c>: the bench's load generator, usable on its own against any echo server.</summary>
internal static class LoadCommand
{
    public static Command Create()
    {
        Option<IPEndPoint> server = new("--server")
        {
            Description = "The echo server, as ADDRESS:PORT.",
            Required = true,
            CustomParser = result =>
            {
                string text = result.Tokens.Single().Value;
                if (IPEndPoint.TryParse(text, out IPEndPoint? parsed) && parsed.Port != 0)
                {
                    return parsed;
                }

                result.AddError($"'{text}' is not ADDRESS:PORT.");
                return null;
            },
        };
        Option<int> connections = CommandOptions.Positive("--connections", "Connections to open. Defaults to 1000.", 1000, max: 15_000);
        Option<int> size = CommandOptions.Positive("--size", "Bytes per message. Defaults to 64.", 64, max: 1024 * 1024);
        Option<int> depth = CommandOptions.Positive("--depth", "Messages in flight per connection. Defaults to 1.", 1, max: 64);
        Option<TimeSpan> warmup = CommandOptions.Duration("--warmup", "Warm-up before measuring. Defaults to 2s.", TimeSpan.FromSeconds(2));
        Option<TimeSpan> duration = CommandOptions.Duration("--duration", "Measured time. Defaults to 10s.", TimeSpan.FromSeconds(10));

        Option<bool> hold = new("--hold")
        {
            Description = "After 'done', keep the connections open until a line arrives on standard input (for socknotify bench).",
            Hidden = true,
        };

        Command command = new("load", "Drive an echo server with round trips, verify every byte, print one JSON result line.")
        {
            server, connections, size, depth, warmup, duration, hold,
        };
        CommandOptions.RefuseTooManyBytesInFlight(command, depth, size);
        command.SetAction(parsed =>
        {
            LoadResult result = LoadGenerator.Run(
                parsed.GetValue(server)!, parsed.GetValue(connections), parsed.GetValue(size), parsed.GetValue(depth),
                parsed.GetValue(warmup), parsed.GetValue(duration), Console.Out,
                parsed.GetValue(hold) ? () => Console.In.ReadLineAsync() : null);
            Console.WriteLine(JsonSerializer.Serialize(result, LoadResultJson.Default.LoadResult));
            return result.Error is null ? ExitCodes.Success : ExitCodes.Failure;
        });
        return command;
    }
}
