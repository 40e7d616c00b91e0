using System.Diagnostics;

namespace Tributary.Cli.Tests;

/// <summary>Runs the built <c>tributary</c> executable against a cluster, as a user would, and returns what it printed.</summary>
internal static class CliProcess
{
    public static async Task<(int Exit, string Out, string Err)> RunAsync(string brokers, IEnumerable<string> args, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "tributary"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var a in args) start.ArgumentList.Add(a);
        start.ArgumentList.Add("--brokers");
        start.ArgumentList.Add(brokers);
        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cancel.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
