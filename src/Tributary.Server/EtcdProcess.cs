using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Tributary.Server;

/// <summary>
/// A single-member etcd run as a child process on loopback ports with its own data directory, for a cluster started
/// in-process (<see cref="TributaryCluster"/>) and for tests. Needs the <c>etcd</c> executable (Debian: etcd-server).
/// </summary>
public sealed class EtcdProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _dataDir;
    private readonly bool _ownsDataDir;

    private EtcdProcess(Process process, string dataDir, bool ownsDataDir, int clientPort)
    {
        _process = process;
        _dataDir = dataDir;
        _ownsDataDir = ownsDataDir;
        ClientPort = clientPort;
    }

    public int ClientPort { get; }

    /// <summary>The broker setting that points at this etcd: <c>metadata.store=etcd://127.0.0.1:PORT</c>.</summary>
    public string StoreSetting => $"etcd://127.0.0.1:{ClientPort}";

    public static async Task<EtcdProcess> StartAsync(string? dataDir = null, string executable = "etcd", CancellationToken cancellationToken = default)
    {
        var owns = dataDir is null;
        dataDir ??= Path.Combine(Path.GetTempPath(), "tributary-etcd-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dataDir);
        for (var attempt = 0; ; attempt++)
        {
            // Free ports are found by binding port 0; another process may take one before etcd binds it, so a start
            // that fails on its ports is tried again with new ones.
            var (client, peer) = (FreePort(), FreePort());
            var info = new ProcessStartInfo(executable)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (var arg in new[]
            {
                "--name", "default", "--data-dir", dataDir,
                "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
                "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
                "--initial-cluster", $"default=http://127.0.0.1:{peer}", "--log-level", "error", "--logger", "zap",
            })
                info.ArgumentList.Add(arg);
            Process process;
            try
            {
                process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {executable}");
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InvalidOperationException($"etcd is not installed ({executable}: {e.Message}); on Debian: apt-get install etcd-server", e);
            }
            var stderr = new System.Text.StringBuilder();
            process.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var etcd = new EtcdProcess(process, dataDir, owns, client);
            if (await etcd.WaitHealthyAsync(TimeSpan.FromSeconds(20), cancellationToken).ConfigureAwait(false)) return etcd;
            await etcd.KillAsync().ConfigureAwait(false);
            if (attempt >= 2)
            {
                string text;
                lock (stderr) text = stderr.ToString();
                throw new InvalidOperationException($"etcd did not become healthy on 127.0.0.1:{client}: {text}");
            }
        }
    }

    private async Task<bool> WaitHealthyAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        var pause = TimeSpan.FromMilliseconds(20);
        while (Stopwatch.GetTimestamp() < deadline && !_process.HasExited)
        {
            try
            {
                var body = await http.GetStringAsync($"http://127.0.0.1:{ClientPort}/health", cancellationToken).ConfigureAwait(false);
                if (body.Contains("\"health\":\"true\"", StringComparison.Ordinal)) return true;
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
            await Task.Delay(pause, cancellationToken).ConfigureAwait(false);
            pause = TimeSpan.FromMilliseconds(Math.Min(pause.TotalMilliseconds * 2, 200));
        }
        return false;
    }

    private async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().ConfigureAwait(false);
        }
    }

    private static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await KillAsync().ConfigureAwait(false);
        _process.Dispose();
        if (_ownsDataDir)
        {
            try
            {
                Directory.Delete(_dataDir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
