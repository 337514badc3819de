namespace SockNotify.Tests.Model;

/// <summary>The port did something the reference model forbids, or failed to do something it requires.</summary>
internal sealed class ModelViolation : Exception
{
    public ModelViolation(string message)
        : base(message)
    {
    }

    public ModelViolation(string message, Exception inner)
        : base(message, inner)
    {
    }
}
