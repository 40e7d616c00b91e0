using System.Diagnostics;

namespace Tributary.Cli.Tests;

/// <summary>Runs the built <c>tributary</c> executable against a cluster, without colours, bounded by a minute.</summary>
internal static class CliProcess
{
    public static async Task<(int Exit, string Out, string Err)> RunAsync(string bootstrap, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "tributary"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        start.ArgumentList.Add("--brokers");
        start.ArgumentList.Add(bootstrap);
        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
