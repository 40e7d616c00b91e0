using System.Diagnostics;

namespace Tributary.SchemaRegistry.Tests;

/// <summary><c>tributary registry …</c> run as a real process against the in-process registry.</summary>
public sealed class CliTests(RegistryFixture fixture) : IClassFixture<RegistryFixture>
{
    private async Task<(int Exit, string Output)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add("exec");
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "tributary.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.ArgumentList.Add("--registry");
        start.ArgumentList.Add(fixture.Server.SchemaRegistryUrl!);
        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    [Fact]
    public async Task Register_check_get_config_and_mode()
    {
        var dir = Directory.CreateTempSubdirectory("tributary-cli-");
        try
        {
            var v1 = Path.Combine(dir.FullName, "v1.avsc");
            var v2 = Path.Combine(dir.FullName, "v2.avsc");
            var proto = Path.Combine(dir.FullName, "t.proto");
            File.WriteAllText(v1, """{"type":"record","name":"Cli","fields":[{"name":"a","type":"int"}]}""");
            File.WriteAllText(v2, """{"type":"record","name":"Cli","fields":[{"name":"a","type":"int"},{"name":"b","type":"string"}]}""");
            File.WriteAllText(proto, "syntax = \"proto3\";\nmessage T { string a = 1; }\n");

            var (exit, output) = await RunAsync("registry", "register", "cli-value", v1);
            Assert.True(exit == 0, output);
            Assert.Contains("id", output, StringComparison.Ordinal);
            Assert.Equal(0, (await RunAsync("registry", "register", "cli-proto", proto)).Exit);
            Assert.Contains("PROTOBUF", (await RunAsync("registry", "get", "cli-proto")).Output, StringComparison.Ordinal);

            (exit, output) = await RunAsync("registry", "check", "cli-value", v2);
            Assert.Equal(1, exit);
            Assert.Contains("READER_FIELD_MISSING_DEFAULT_VALUE", output, StringComparison.Ordinal);

            (exit, output) = await RunAsync("registry", "subjects");
            Assert.Equal(0, exit);
            Assert.Contains("cli-value", output, StringComparison.Ordinal);
            Assert.Contains("1", (await RunAsync("registry", "versions", "cli-value")).Output, StringComparison.Ordinal);
            Assert.Contains("\"Cli\"", (await RunAsync("registry", "get", "cli-value", "1")).Output, StringComparison.Ordinal);

            Assert.Equal(0, (await RunAsync("registry", "config", "cli-value", "--set", "none")).Exit);
            Assert.Contains("NONE", (await RunAsync("registry", "config", "cli-value")).Output, StringComparison.Ordinal);
            Assert.Equal(0, (await RunAsync("registry", "check", "cli-value", v2)).Exit);
            Assert.Contains("READWRITE", (await RunAsync("registry", "mode")).Output, StringComparison.Ordinal);

            (exit, output) = await RunAsync("registry", "get", "no-such-subject");
            Assert.Equal(1, exit);
            Assert.Contains("40401", output, StringComparison.Ordinal);
        }
        finally
        {
            dir.Delete(true);
        }
    }
}
