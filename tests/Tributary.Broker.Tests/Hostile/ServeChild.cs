using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests.Hostile;

/// <summary>
/// A `tributary serve` child for attacks whose effect must be measured on a whole process: its resident memory,
/// CPU time and log lines, under a lowered descriptor limit (prlimit) or a GC heap hard limit so an attack on a
/// broken broker cannot take the test machine with it.
/// </summary>
internal sealed class ServeChild : IDisposable
{
    private readonly Process _process;
    private readonly string _dataDir;
    private readonly ConcurrentQueue<string> _lines = new();

    private ServeChild(Process process, string dataDir, int port)
    {
        _process = process;
        _dataDir = dataDir;
        Bootstrap = $"127.0.0.1:{port}";
    }

    public string Bootstrap { get; }

    public bool HasExited => _process.HasExited;

    public IReadOnlyCollection<string> LogLines => _lines;

    public static async Task<ServeChild> StartAsync(ITestOutputHelper output, IReadOnlyDictionary<string, string>? settings = null,
        int? maxOpenFiles = null, long? gcHeapHardLimit = null)
    {
        var cli = await KillTests.LocateCliAsync();
        var port = KillTests.FreePort();
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-hostile-" + Guid.NewGuid().ToString("N"));
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        var args = new List<string>();
        // prlimit sets the limit on itself and then execs the command, so the broker keeps this process id.
        if (maxOpenFiles is { } files) args.AddRange([$"--nofile={files}:{files}", dotnet]);
        args.AddRange([cli, "serve", "--data-dir", dataDir, "--listen", $"127.0.0.1:{port}"]);
        // An ephemeral registry port, so children and other tests never contend for 8081.
        var all = new Dictionary<string, string> { [TributaryServer.SchemaRegistryListenersSetting] = "http://127.0.0.1:0" };
        foreach (var (name, value) in settings ?? new Dictionary<string, string>()) all[name] = value;
        foreach (var (name, value) in all) args.AddRange(["--set", $"{name}={value}"]);
        var info = new ProcessStartInfo(maxOpenFiles is null ? dotnet : "prlimit", args)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (gcHeapHardLimit is { } limit) info.Environment["DOTNET_GCHeapHardLimit"] = "0x" + limit.ToString("X", CultureInfo.InvariantCulture);
        var child = new ServeChild(Process.Start(info)!, dataDir, port);
        void Log(string? line)
        {
            if (line is null) return;
            child._lines.Enqueue(line);
            try
            {
                output.WriteLine("serve: " + line);
            }
            catch (InvalidOperationException)
            {
                // The test has finished; late output of a dying process has nowhere to go.
            }
        }
        child._process.OutputDataReceived += (_, e) => Log(e.Data);
        child._process.ErrorDataReceived += (_, e) => Log(e.Data);
        child._process.BeginOutputReadLine();
        child._process.BeginErrorReadLine();
        try
        {
            await child.WaitForPortAsync(port);
        }
        catch
        {
            child.Dispose();
            throw;
        }
        return child;
    }

    private async Task WaitForPortAsync(int port)
    {
        for (var attempt = 0; attempt < 300; attempt++)
        {
            Assert.False(_process.HasExited, "tributary serve exited before listening");
            // The port answers before start-up has finished; the banner comes last.
            if (!_lines.Any(l => l.StartsWith("Tributary listening", StringComparison.Ordinal)))
            {
                await Task.Delay(100);
                continue;
            }
            using var client = new TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await client.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
                return;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                await Task.Delay(100);
            }
        }
        Assert.Fail($"tributary serve did not listen on port {port} within 30 s");
    }

    /// <summary>Resident set size from /proc (VmRSS), in bytes.</summary>
    public long RssBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{_process.Id}/status"))
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        throw new InvalidOperationException("no VmRSS");
    }

    public TimeSpan CpuTime()
    {
        _process.Refresh();
        return _process.TotalProcessorTime;
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit(15_000);
        }
        _process.Dispose();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
