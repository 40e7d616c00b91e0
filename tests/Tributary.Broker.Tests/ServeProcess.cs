using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests;

/// <summary>
/// A `tributary serve` child process, for what only a whole process shows: a SIGKILL and a restart on the same data
/// directory and port, a lowered descriptor limit (prlimit), a GC heap hard limit, its log lines, resident memory and
/// CPU time. Its output goes to the test log. The registry listens on an ephemeral port unless the test names one,
/// so children never contend for 8081.
/// </summary>
internal sealed class ServeProcess : IDisposable
{
    private readonly Process _process;
    private readonly Launch _launch;
    private readonly ConcurrentQueue<string> _lines = new();
    private bool _ownsDataDir;

    private sealed record Launch(string Cli, string DataDir, int Port, ITestOutputHelper Output,
        IReadOnlyDictionary<string, string>? Settings, int? OpenFileLimit, long? GcHeapHardLimit);

    private ServeProcess(Process process, Launch launch, bool ownsDataDir)
    {
        _process = process;
        _launch = launch;
        _ownsDataDir = ownsDataDir;
    }

    public string Bootstrap => $"127.0.0.1:{_launch.Port}";

    public string DataDir => _launch.DataDir;

    /// <summary>Every line the process wrote so far, stdout and stderr.</summary>
    public IReadOnlyCollection<string> Lines => _lines;

    /// <summary>The broker's process id (prlimit execs the broker in place, so the same process).</summary>
    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>A child on a fresh data directory (removed on dispose) and a free port.</summary>
    public static async Task<ServeProcess> StartAsync(ITestOutputHelper output, IReadOnlyDictionary<string, string>? settings = null,
        int? openFileLimit = null, long? gcHeapHardLimit = null)
    {
        var dataDir = Path.Combine(Path.GetTempPath(), "tributary-serve-" + Guid.NewGuid().ToString("N"));
        return await StartAsync(new Launch(await LocateCliAsync(), dataDir, FreePort(), output, settings, openFileLimit, gcHeapHardLimit), ownsDataDir: true);
    }

    /// <summary>A child on the caller's data directory and port (the caller removes the directory).</summary>
    /// <param name="settings">Broker settings, each passed as <c>--set name=value</c>.</param>
    /// <param name="openFileLimit">When set, the child runs under `prlimit --nofile=N:N` (a lowered `ulimit -n`).</param>
    /// <param name="gcHeapHardLimit">When set, DOTNET_GCHeapHardLimit, so a runaway broker fails alone.</param>
    public static Task<ServeProcess> StartAsync(string cli, string dataDir, int port, ITestOutputHelper output,
        IReadOnlyDictionary<string, string>? settings = null, int? openFileLimit = null, long? gcHeapHardLimit = null) =>
        StartAsync(new Launch(cli, dataDir, port, output, settings, openFileLimit, gcHeapHardLimit), ownsDataDir: false);

    /// <summary>
    /// Kills this child if it still runs and starts another on the same data directory, port, settings and limits;
    /// the new one takes over removing the data directory if this one was to.
    /// </summary>
    public async Task<ServeProcess> RestartAsync()
    {
        if (!_process.HasExited) Kill();
        var owns = _ownsDataDir;
        _ownsDataDir = false;
        return await StartAsync(_launch, owns);
    }

    private static async Task<ServeProcess> StartAsync(Launch launch, bool ownsDataDir)
    {
        List<string> args = [launch.Cli, "serve", "--data-dir", launch.DataDir, "--listen", $"127.0.0.1:{launch.Port}"];
        var all = new Dictionary<string, string> { [TributaryServer.SchemaRegistryListenersSetting] = "http://127.0.0.1:0" };
        foreach (var (name, value) in launch.Settings ?? new Dictionary<string, string>()) all[name] = value;
        foreach (var (name, value) in all) args.AddRange(["--set", $"{name}={value}"]);
        // prlimit sets the limit on itself and then execs the command, so the broker keeps this process id.
        var info = launch.OpenFileLimit is { } files
            ? new ProcessStartInfo("prlimit", [$"--nofile={files}:{files}", DotnetHost(), .. args])
            : new ProcessStartInfo(DotnetHost(), args);
        info.RedirectStandardOutput = true;
        info.RedirectStandardError = true;
        if (launch.GcHeapHardLimit is { } heap) info.Environment["DOTNET_GCHeapHardLimit"] = "0x" + heap.ToString("X", CultureInfo.InvariantCulture);
        var serve = new ServeProcess(Process.Start(info)!, launch, ownsDataDir);
        serve._process.OutputDataReceived += (_, e) => serve.OnLine(e.Data);
        serve._process.ErrorDataReceived += (_, e) => serve.OnLine(e.Data);
        serve._process.BeginOutputReadLine();
        serve._process.BeginErrorReadLine();
        try
        {
            await serve.WaitUntilListeningAsync();
        }
        catch
        {
            serve.Dispose();
            throw;
        }
        return serve;
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        _lines.Enqueue(line);
        try
        {
            _launch.Output.WriteLine("serve: " + line);
        }
        catch (InvalidOperationException)
        {
            // The test has finished; late output of a dying process has nowhere to go.
        }
    }

    /// <summary>
    /// Waits for the start-up banner, then for the listener to accept. The port answers before start-up has finished;
    /// the banner comes last.
    /// </summary>
    private Task WaitUntilListeningAsync() => Eventually.TrueAsync(async () =>
    {
        Assert.False(_process.HasExited, $"tributary serve exited with code {(_process.HasExited ? _process.ExitCode : 0)} before listening");
        if (!_lines.Any(l => l.StartsWith("Tributary listening", StringComparison.Ordinal))) return false;
        using var client = new TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        try
        {
            await client.ConnectAsync(IPAddress.Loopback, _launch.Port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            return false;
        }
    }, TimeSpan.FromSeconds(30), $"tributary serve to listen on port {_launch.Port}", () => _lines.LastOrDefault());

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

    /// <summary>SIGKILL: no shutdown hook runs, nothing is flushed that was not already.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        Assert.True(_process.WaitForExit(15_000), "the killed broker did not exit");
    }

    /// <summary>SIGSTOP: the process stays, holds its sockets and files, and answers nothing until <see cref="Resume"/>.</summary>
    public void Pause() => Signal("STOP");

    /// <summary>SIGCONT after <see cref="Pause"/>.</summary>
    public void Resume() => Signal("CONT");

    /// <summary>SIGTERM, then waits for the broker's clean shutdown (connections closed, logs flushed) to finish.</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        if (_process.HasExited) return;
        Signal("TERM");
        using var wait = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(wait.Token);
    }

    private void Signal(string name)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", [$"-{name}", _process.Id.ToString(CultureInfo.InvariantCulture)]))!;
        kill.WaitForExit();
        Assert.True(kill.ExitCode == 0, $"kill -{name} {_process.Id} failed");
    }

    public void Dispose()
    {
        if (!_process.HasExited) Kill();
        _process.Dispose();
        if (!_ownsDataDir) return;
        try
        {
            Directory.Delete(_launch.DataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>
    /// A free loopback port below the kernel's ephemeral range. A killed broker's port must stay unused until its
    /// successor binds it: the producer keeps retrying it, and another test's broker that took it with bind(0) would
    /// acknowledge the retries into an empty log of its own. Ports outside the ephemeral range are never handed out
    /// by bind(0) or to outgoing connections.
    /// </summary>
    internal static int FreePort()
    {
        var ephemeralLow = 32768;
        if (File.Exists("/proc/sys/net/ipv4/ip_local_port_range")
            && int.TryParse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0], out var low))
            ephemeralLow = low;
        var lowest = Math.Min(10_000, ephemeralLow / 2);
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = Random.Shared.Next(lowest, ephemeralLow);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException($"no free loopback port in {lowest}..{ephemeralLow - 1}");
    }

    /// <summary>The CLI's build output next to ours (same configuration); built once if it is not there yet.</summary>
    internal static async Task<string> LocateCliAsync()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Tributary.slnx"))) dir = dir.Parent;
        Assert.NotNull(dir);
        // Our own output is tests/Tributary.Broker.Tests/bin/<Configuration>/<tfm>/.
        var tfmDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var configuration = tfmDir.Parent!.Name;
        // TRIBUTARY_CLI points at another build (e.g. the previous commit's, to measure an attack before a fix).
        if (Environment.GetEnvironmentVariable("TRIBUTARY_CLI") is { Length: > 0 } other && File.Exists(other)) return other;
        var cli = Path.Combine(dir.FullName, "src", "Tributary.Cli", "bin", configuration, tfmDir.Name, "tributary.dll");
        if (File.Exists(cli)) return cli;

        using var build = Process.Start(new ProcessStartInfo(DotnetHost(), ["build", Path.Combine(dir.FullName, "src", "Tributary.Cli"), "-c", configuration])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        })!;
        var stdout = build.StandardOutput.ReadToEndAsync();
        var stderr = build.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await build.WaitForExitAsync(timeout.Token);
        Assert.True(build.ExitCode == 0 && File.Exists(cli), $"building the CLI failed:\n{await stdout}\n{await stderr}");
        return cli;
    }

    private static string DotnetHost() => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
}
