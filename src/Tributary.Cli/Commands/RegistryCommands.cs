using System.CommandLine;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Tributary.Cli.Output;

namespace Tributary.Cli.Commands;

/// <summary>
/// <c>tributary registry …</c>: a client of any Confluent-compatible schema registry (Tributary's own by default at
/// http://localhost:8081, or <c>--registry URL</c> / <c>TRIBUTARY_REGISTRY</c>). Registry errors are printed with
/// their Confluent error code and message; the exit code is 1 for errors and for an incompatible <c>check</c>.
/// </summary>
public static class RegistryCommands
{
    private const string ContentType = "application/vnd.schemaregistry.v1+json";

    private static readonly Option<string?> RegistryUrl = new("--registry", "-r")
    {
        Description = "Schema registry URL [default $TRIBUTARY_REGISTRY or http://localhost:8081]",
        Recursive = true,
    };

    public static Command Create()
    {
        var registry = new Command("registry", "Schema registry: subjects, versions, registration, compatibility, config and mode")
        {
            SubjectsCommand(), VersionsCommand(), GetCommand(), RegisterCommand(), CheckCommand(), ConfigCommand(), ModeCommand(),
        };
        registry.Options.Add(RegistryUrl);
        return registry;
    }

    private static Command SubjectsCommand()
    {
        var deleted = new Option<bool>("--deleted") { Description = "Include soft-deleted subjects" };
        var command = new Command("subjects", "List subjects") { deleted };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var body = await SendAsync(parse, HttpMethod.Get, "/subjects" + (parse.GetValue(deleted) ? "?deleted=true" : ""), null, ct);
            foreach (var subject in body!.AsArray()) Terminal.Info((string)subject!);
            return 0;
        });
        return command;
    }

    private static Command VersionsCommand()
    {
        var subject = new Argument<string>("subject");
        var command = new Command("versions", "List the versions of a subject") { subject };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var body = await SendAsync(parse, HttpMethod.Get, $"/subjects/{Uri.EscapeDataString(parse.GetValue(subject)!)}/versions", null, ct);
            foreach (var v in body!.AsArray()) Terminal.Info(v!.ToJsonString());
            return 0;
        });
        return command;
    }

    private static Command GetCommand()
    {
        var subject = new Argument<string>("subject");
        var version = new Argument<string>("version") { DefaultValueFactory = _ => "latest", Description = "Version number or 'latest'" };
        var command = new Command("get", "Show a schema version (id, type, schema)") { subject, version };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var body = await SendAsync(parse, HttpMethod.Get, $"/subjects/{Uri.EscapeDataString(parse.GetValue(subject)!)}/versions/{parse.GetValue(version)}", null, ct);
            Terminal.Info($"Subject: {body!["subject"]}");
            Terminal.Info($"Version: {body["version"]}");
            Terminal.Info($"Id:      {body["id"]}");
            Terminal.Info($"Type:    {(string?)body["schemaType"] ?? "AVRO"}");
            Terminal.Info(PrettySchema((string)body["schema"]!));
            return 0;
        });
        return command;
    }

    private static Command RegisterCommand()
    {
        var subject = new Argument<string>("subject");
        var file = new Argument<FileInfo>("file") { Description = "Schema file (.avsc, .json, .proto)" };
        var type = TypeOption();
        var command = new Command("register", "Register a schema under a subject; prints its id") { subject, file, type };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var request = SchemaBody(parse.GetValue(file)!, parse.GetValue(type));
            var body = await SendAsync(parse, HttpMethod.Post, $"/subjects/{Uri.EscapeDataString(parse.GetValue(subject)!)}/versions", request, ct);
            Terminal.Success($"registered under {parse.GetValue(subject)} with id {body!["id"]}");
            return 0;
        });
        return command;
    }

    private static Command CheckCommand()
    {
        var subject = new Argument<string>("subject");
        var file = new Argument<FileInfo>("file");
        var type = TypeOption();
        var command = new Command("check", "Test a schema against a subject's compatibility level") { subject, file, type };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var request = SchemaBody(parse.GetValue(file)!, parse.GetValue(type));
            var body = await SendAsync(parse, HttpMethod.Post, $"/compatibility/subjects/{Uri.EscapeDataString(parse.GetValue(subject)!)}/versions?verbose=true", request, ct);
            if ((bool)body!["is_compatible"]!)
            {
                Terminal.Success("compatible");
                return 0;
            }
            Terminal.Error("incompatible");
            foreach (var message in body["messages"]?.AsArray() ?? []) Terminal.Info("  " + (string?)message);
            return ErrorHandling.Failure;
        });
        return command;
    }

    private static Command ConfigCommand()
    {
        var subject = new Argument<string?>("subject") { Arity = ArgumentArity.ZeroOrOne };
        var set = new Option<string?>("--set") { Description = "New level: NONE, BACKWARD[_TRANSITIVE], FORWARD[_TRANSITIVE], FULL[_TRANSITIVE]" };
        var command = new Command("config", "Show or set the compatibility level (global, or of a subject)") { subject, set };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var path = parse.GetValue(subject) is { } s ? $"/config/{Uri.EscapeDataString(s)}" : "/config";
            if (parse.GetValue(set) is { } level)
            {
                var body = await SendAsync(parse, HttpMethod.Put, path, new JsonObject { ["compatibility"] = level.ToUpperInvariant() }, ct);
                Terminal.Success($"compatibility {body!["compatibility"]}");
            }
            else
            {
                var body = await SendAsync(parse, HttpMethod.Get, path + (path == "/config" ? "" : "?defaultToGlobal=true"), null, ct);
                Terminal.Info((string?)body!["compatibilityLevel"] ?? body.ToJsonString());
            }
            return 0;
        });
        return command;
    }

    private static Command ModeCommand()
    {
        var subject = new Argument<string?>("subject") { Arity = ArgumentArity.ZeroOrOne };
        var set = new Option<string?>("--set") { Description = "New mode: READWRITE, READONLY, IMPORT" };
        var command = new Command("mode", "Show or set the mode (global, or of a subject)") { subject, set };
        command.SetGuardedAction(async (parse, ct) =>
        {
            var path = parse.GetValue(subject) is { } s ? $"/mode/{Uri.EscapeDataString(s)}" : "/mode";
            var body = parse.GetValue(set) is { } mode
                ? await SendAsync(parse, HttpMethod.Put, path, new JsonObject { ["mode"] = mode.ToUpperInvariant() }, ct)
                : await SendAsync(parse, HttpMethod.Get, path + (path == "/mode" ? "" : "?defaultToGlobal=true"), null, ct);
            Terminal.Info((string?)body!["mode"] ?? body.ToJsonString());
            return 0;
        });
        return command;
    }

    private static Option<string?> TypeOption() => new("--type", "-t") { Description = "AVRO, JSON or PROTOBUF [default: from the file extension, else AVRO]" };

    private static JsonObject SchemaBody(FileInfo file, string? type)
    {
        var text = File.ReadAllText(file.FullName);
        type ??= file.Extension.ToLowerInvariant() switch
        {
            ".proto" => "PROTOBUF",
            ".json" when text.Contains("\"$schema\"", StringComparison.Ordinal) || !text.Contains("\"fields\"", StringComparison.Ordinal) => "JSON",
            _ => "AVRO",
        };
        var body = new JsonObject { ["schema"] = text };
        if (!string.Equals(type, "AVRO", StringComparison.OrdinalIgnoreCase)) body["schemaType"] = type.ToUpperInvariant();
        return body;
    }

    private static string PrettySchema(string schema)
    {
        try
        {
            return JsonNode.Parse(schema)!.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
        }
        catch (System.Text.Json.JsonException)
        {
            return schema; // protobuf text
        }
    }

    private static async Task<JsonNode?> SendAsync(ParseResult parse, HttpMethod method, string path, JsonNode? body, CancellationToken ct)
    {
        var baseUrl = parse.GetValue(RegistryUrl) ?? Environment.GetEnvironmentVariable("TRIBUTARY_REGISTRY") ?? "http://localhost:8081";
        using var http = new HttpClient { BaseAddress = new Uri(baseUrl.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(method, path.TrimStart('/'));
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue(ContentType));
        if (body is not null)
        {
            request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8);
            request.Content.Headers.ContentType = new MediaTypeHeaderValue(ContentType);
        }
        using var response = await http.SendAsync(request, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        JsonNode? parsed;
        try
        {
            parsed = text.Length == 0 ? null : JsonNode.Parse(text);
        }
        catch (System.Text.Json.JsonException)
        {
            parsed = JsonValue.Create(text);
        }
        if (!response.IsSuccessStatusCode)
        {
            var code = parsed is JsonObject o ? (string?)o["error_code"]?.ToString() : null;
            var message = parsed is JsonObject m ? (string?)m["message"] : text;
            throw new InvalidOperationException($"registry error {code ?? ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture)}: {message}");
        }
        return parsed;
    }
}
