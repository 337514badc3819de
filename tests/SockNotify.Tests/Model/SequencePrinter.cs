using System.Globalization;
using System.Reflection;
using System.Text;

namespace SockNotify.Tests.Model;

/// <summary>
/// Prints a step sequence as C# that compiles in this project: each step as its record's constructor call with named
/// arguments, and a whole shrunk failure as a test method that replays it through the same model, ready to paste.
/// Works on any positional record whose constructor arguments are ints, bools or enums (every model step is one).
/// </summary>
internal static class SequencePrinter
{
    /// <summary>One step, e.g. <c>new NotificationStep.PeerSend(Socket: 0, Bytes: 3)</c>.</summary>
    public static string Step(object step)
    {
        Type type = step.GetType();
        // A positional record's primary constructor is its public one; the compiler's copy constructor is protected.
        ConstructorInfo constructor = type.GetConstructors().Single();
        IEnumerable<string> arguments = constructor.GetParameters()
            .Select(p => $"{p.Name}: {Value(type.GetProperty(p.Name!)!.GetValue(step)!)}");
        return $"new {TypeName(type)}({string.Join(", ", arguments)})";
    }

    /// <summary>The steps as a collection expression, one per line, indented for a method body.</summary>
    public static string Steps<TStep>(IEnumerable<TStep> steps) where TStep : notnull
    {
        StringBuilder text = new("[\n");
        foreach (TStep step in steps)
        {
            text.Append("        ").Append(Step(step)).Append(",\n");
        }

        return text.Append("    ]").ToString();
    }

    /// <summary>A test method that replays <paramref name="steps"/> on <paramref name="backend"/> through <paramref name="runner"/>.</summary>
    public static string Test<TStep>(string runner, CompletionPortBackend backend, IEnumerable<TStep> steps) where TStep : notnull =>
        "[Theory]\n" +
        $"[InlineData(CompletionPortBackend.{backend})]\n" +
        "public void Shrunk_sequence(CompletionPortBackend backend) => " + runner + ".Check(backend,\n" +
        "    " + Steps(steps) + ");\n";

    private static string TypeName(Type type) =>
        type.DeclaringType is { } outer ? $"{TypeName(outer)}.{type.Name}" : type.Name;

    private static string Value(object value) => value switch
    {
        bool flag => flag ? "true" : "false",
        Enum flags => Flags(flags),
        IFormattable number => number.ToString(null, CultureInfo.InvariantCulture),
        _ => throw new NotSupportedException($"A step argument of type {value.GetType()} cannot be printed."),
    };

    private static string Flags(Enum value)
    {
        Type type = value.GetType();
        ulong bits = Convert.ToUInt64(value, CultureInfo.InvariantCulture);
        if (Enum.IsDefined(type, value) && (bits == 0 || ulong.IsPow2(bits) || type.GetCustomAttribute<FlagsAttribute>() is null))
        {
            return $"{type.Name}.{value}";
        }

        // Flags one by one, lowest first, so that composite names (All) never hide which bits are set.
        List<string> parts = [];
        foreach (Enum flag in Enum.GetValues(type).Cast<Enum>())
        {
            ulong flagBits = Convert.ToUInt64(flag, CultureInfo.InvariantCulture);
            if (ulong.IsPow2(flagBits) && (bits & flagBits) != 0)
            {
                parts.Add($"{type.Name}.{flag}");
                bits &= ~flagBits;
            }
        }

        if (bits != 0)
        {
            parts.Add($"({type.Name}){bits}");
        }

        return string.Join(" | ", parts);
    }
}
