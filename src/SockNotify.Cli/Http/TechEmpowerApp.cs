using System.Net;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace SockNotify.Cli.Http;

/// <summary>
/// TechEmpower's plaintext and JSON tests as minimal APIs, on Kestrel with the chosen transport: what
/// <c>socknotify http</c> serves, so that the two transports are compared on the same app.
/// </summary>
internal static class TechEmpowerApp
{
    public const string Sockets = "sockets";
    public const string SockNotify = "socknotify";

    public static readonly string[] Transports = [Sockets, SockNotify];

    public static WebApplication Build(string transport, CompletionPortBackend backend, IPEndPoint endPoint)
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.ConfigureHttpJsonOptions(options => options.SerializerOptions.TypeInfoResolverChain.Insert(0, HttpJsonContext.Default));
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(endPoint));
        if (transport == SockNotify)
        {
            builder.WebHost.UseSockNotify(options => options.Backend = backend);
        }

        WebApplication app = builder.Build();
        app.MapGet("/plaintext", () => Results.Text("Hello, World!", "text/plain"));
        app.MapGet("/json", () => Results.Json(new JsonMessage("Hello, World!"), HttpJsonContext.Default.JsonMessage));
        return app;
    }
}

internal sealed record JsonMessage([property: JsonPropertyName("message")] string Message);

[JsonSerializable(typeof(JsonMessage))]
internal sealed partial class HttpJsonContext : JsonSerializerContext;
