namespace SockNotify.Tests.Support;

/// <summary>A named completion key, so failures print readable keys.</summary>
internal sealed record Key(string Name)
{
    public override string ToString() => Name;
}
