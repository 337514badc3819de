using System.CommandLine;
using System.Globalization;

namespace SockNotify.Cli;

/// <summary>Options several commands share, with their validation in one place.</summary>
internal static class CommandOptions
{
    public static Option<int> Positive(string name, string description, int defaultValue, int max)
    {
        Option<int> option = new(name) { Description = description, DefaultValueFactory = _ => defaultValue };
        option.Validators.Add(result =>
        {
            int value = result.GetValueOrDefault<int>();
            if (value < 1 || value > max)
            {
                result.AddError($"{name} must be between 1 and {max}.");
            }
        });
        return option;
    }

    private static readonly TimeSpan MaxDuration = TimeSpan.FromHours(1);

    /// <summary>--port of a server command: 0 picks a free one. Defaults to 5000.</summary>
    public static Option<int> ListenPort()
    {
        Option<int> port = new("--port")
        {
            Description = "TCP port to listen on; 0 picks a free one. Defaults to 5000.",
            DefaultValueFactory = _ => 5000,
        };
        port.Validators.Add(result =>
        {
            if (result.GetValueOrDefault<int>() is < System.Net.IPEndPoint.MinPort or > System.Net.IPEndPoint.MaxPort)
            {
                result.AddError($"--port must be between {System.Net.IPEndPoint.MinPort} and {System.Net.IPEndPoint.MaxPort}.");
            }
        });
        return port;
    }

    /// <summary>--address of a server command. Defaults to 127.0.0.1.</summary>
    public static Option<System.Net.IPAddress> ListenAddress() => new("--address")
    {
        Description = "Address to listen on. Defaults to 127.0.0.1.",
        DefaultValueFactory = _ => System.Net.IPAddress.Loopback,
        CustomParser = result =>
        {
            string text = result.Tokens.Single().Value;
            if (System.Net.IPAddress.TryParse(text, out System.Net.IPAddress? parsed))
            {
                return parsed;
            }

            result.AddError($"'{text}' is not an IP address.");
            return null;
        },
    };

    /// <summary>The names <c>--backend</c> accepts, for <see cref="CompletionPortBackend"/>'s members in order.</summary>
    public static readonly string[] BackendNames = ["auto", "io-uring", "epoll"];

    /// <summary>The <see cref="CompletionPort"/> backend of the engines that have one.</summary>
    public static Option<CompletionPortBackend> Backend(string description) => new("--backend")
    {
        Description = description,
        HelpName = string.Join('|', BackendNames),
        DefaultValueFactory = _ => CompletionPortBackend.Automatic,
        CustomParser = result =>
        {
            string text = result.Tokens.Single().Value;
            int index = Array.IndexOf(BackendNames, text);
            if (index < 0)
            {
                result.AddError($"--backend: '{text}' is not one of {string.Join(", ", BackendNames)}.");
                return default;
            }

            return (CompletionPortBackend)index;
        },
    };

    /// <summary>A comma-separated list (the option may also be repeated); empty items are refused.</summary>
    public static string[] SplitList(System.CommandLine.Parsing.ArgumentResult result, string name)
    {
        string[] items = [.. result.Tokens.SelectMany(t => t.Value.Split(',', StringSplitOptions.TrimEntries))];
        if (items.Length == 0 || items.Any(string.IsNullOrEmpty))
        {
            result.AddError($"{name}: empty item in '{string.Join(",", result.Tokens.Select(t => t.Value))}'.");
        }

        return items;
    }

    /// <summary>Refuses loads whose bytes in flight per connection could deadlock the load generator (it sends while it does not read).</summary>
    public static void RefuseTooManyBytesInFlight(Command command, Option<int> depth, Option<int> size) =>
        command.Validators.Add(result =>
        {
            if ((long)result.GetValue(depth) * result.GetValue(size) > Bench.LoadGenerator.MaxBytesInFlight)
            {
                result.AddError($"--depth x --size may not exceed {Bench.LoadGenerator.MaxBytesInFlight} bytes: the load generator sends while it does not read.");
            }
        });

    /// <summary>A duration written as 500ms, 10s or 2m.</summary>
    public static Option<TimeSpan> Duration(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            string text = result.Tokens.Single().Value;
            if (TryParseDuration(text, out TimeSpan value) && value > TimeSpan.Zero && value <= MaxDuration)
            {
                return value;
            }

            result.AddError($"{name}: '{text}' is not a duration such as 500ms, 10s or 2m (at most an hour).");
            return default;
        },
    };

    public static bool TryParseDuration(string text, out TimeSpan value)
    {
        (string unit, Func<double, TimeSpan> make)[] units =
        [
            ("ms", TimeSpan.FromMilliseconds),
            ("s", TimeSpan.FromSeconds),
            ("m", TimeSpan.FromMinutes),
        ];
        foreach ((string unit, Func<double, TimeSpan> make) in units)
        {
            if (text.EndsWith(unit, StringComparison.Ordinal)
                && double.TryParse(text[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double amount)
                && double.IsFinite(amount) && amount >= 0 && amount <= MaxDuration.TotalMilliseconds)
            {
                value = make(amount);
                return true;
            }
        }

        value = default;
        return false;
    }
}
