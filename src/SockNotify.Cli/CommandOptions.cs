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

    /// <summary>A duration written as 500ms, 10s or 2m.</summary>
    public static Option<TimeSpan> Duration(string name, string description, TimeSpan defaultValue) => new(name)
    {
        Description = description,
        DefaultValueFactory = _ => defaultValue,
        CustomParser = result =>
        {
            string text = result.Tokens.Single().Value;
            if (TryParseDuration(text, out TimeSpan value) && value > TimeSpan.Zero)
            {
                return value;
            }

            result.AddError($"{name}: '{text}' is not a duration such as 500ms, 10s or 2m.");
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
                && double.TryParse(text[..^unit.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out double amount))
            {
                value = make(amount);
                return true;
            }
        }

        value = default;
        return false;
    }
}
