using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// A registry in a child <c>tributary serve</c> process, for input that used to overflow the stack: .NET cannot catch
/// a stack overflow, so in the test host it would end the whole test run instead of failing one test. Here it ends
/// the child, and <see cref="AssertAliveAsync"/> fails.
/// </summary>
public sealed class ServedRegistry : IAsyncLifetime
{
    private readonly DirectoryInfo _dataDir = Directory.CreateTempSubdirectory("tributary-sr-served-");
    private readonly List<string> _output = [];
    private Process _process = null!;

    public HttpClient Http { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        var registryPort = FreePort();
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[]
        {
            "exec", Path.Combine(AppContext.BaseDirectory, "tributary.dll"), "serve", "--data-dir", _dataDir.FullName,
            "--listen", $"127.0.0.1:{FreePort()}", "--set", $"schema.registry.listeners=http://127.0.0.1:{registryPort}",
        })
        {
            info.ArgumentList.Add(arg);
        }
        _process = Process.Start(info)!;
        _process.OutputDataReceived += (_, e) => Keep(e.Data);
        _process.ErrorDataReceived += (_, e) => Keep(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{registryPort}"), Timeout = TimeSpan.FromSeconds(120) };
        // Polling for readiness: the child gives no other signal.
        await Eventually.TrueAsync(async () =>
        {
            Assert.False(_process.HasExited, "tributary serve exited before its registry listened:\n" + Output());
            try
            {
                using var response = await Http.GetAsync("/subjects");
                return response.IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), $"the registry to answer on port {registryPort}", () => Output());
    }

    /// <summary>The process is still running and answers a normal request.</summary>
    public async Task AssertAliveAsync(ITestOutputHelper log)
    {
        Assert.False(_process.HasExited, $"tributary serve died (exit code {(_process.HasExited ? _process.ExitCode : 0)}):\n{Output()}");
        var (status, body) = await Http.GetJson("/subjects");
        Assert.True(status == 200, body?.ToJsonString());
        _process.Refresh();
        log.WriteLine($"child RSS after the attack: {_process.WorkingSet64 >> 20} MiB");
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            if (_output.Count < 200) _output.Add(line);
        }
    }

    private string Output()
    {
        lock (_output) return string.Join('\n', _output.Take(60));
    }

    public Task DisposeAsync()
    {
        Http.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(15_000);
        }
        _process.Dispose();
        _dataDir.Delete(true);
        return Task.CompletedTask;
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
