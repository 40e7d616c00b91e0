using System.Diagnostics;

namespace Tributary.Broker.Tests.Faults;

/// <summary>
/// Three etcd members (one Raft group) as child processes on loopback ports, each on its own data directory, for the
/// fault suite's loss of an etcd member: the brokers get all three client endpoints, and a member killed with SIGKILL
/// rejoins from its data directory when it is started again. Two members keep a quorum, so the cluster's metadata
/// stays writable while one is down.
/// </summary>
internal sealed class FaultEtcd : IAsyncDisposable
{
    public const int Members = 3;

    private readonly string _root;
    private readonly (int Client, int Peer)[] _ports;
    private readonly Process?[] _members = new Process?[Members];

    private FaultEtcd(string root, (int Client, int Peer)[] ports)
    {
        _root = root;
        _ports = ports;
    }

    /// <summary>The brokers' setting: <c>metadata.store=etcd://127.0.0.1:A,127.0.0.1:B,127.0.0.1:C</c>.</summary>
    public string StoreSetting => "etcd://" + string.Join(",", _ports.Select(p => $"127.0.0.1:{p.Client}"));

    /// <summary>The members' client ports, member 1 first.</summary>
    public IReadOnlyList<int> ClientPorts => [.. _ports.Select(p => p.Client)];

    public bool IsRunning(int member) => _members[member - 1] is { HasExited: false };

    public static async Task<FaultEtcd> StartAsync(string root)
    {
        var etcd = new FaultEtcd(root, [.. Enumerable.Range(0, Members).Select(_ => (ServeProcess.FreePort(), ServeProcess.FreePort()))]);
        try
        {
            // All at once: a member waits for a quorum of its peers before it is healthy.
            for (var m = 1; m <= Members; m++) etcd.Launch(m);
            for (var m = 1; m <= Members; m++) await etcd.WaitHealthyAsync(m);
            return etcd;
        }
        catch
        {
            await etcd.DisposeAsync();
            throw;
        }
    }

    /// <summary>SIGKILL of member <paramref name="member"/> (1..3); its data directory stays.</summary>
    public void Kill(int member)
    {
        if (_members[member - 1] is not { } process) return;
        _members[member - 1] = null;
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        process.Dispose();
    }

    /// <summary>Starts member <paramref name="member"/> again on its data directory and waits until it is healthy.</summary>
    public async Task RestartAsync(int member)
    {
        Kill(member);
        Launch(member);
        await WaitHealthyAsync(member);
    }

    private void Launch(int member)
    {
        var (client, peer) = _ports[member - 1];
        var info = new ProcessStartInfo("etcd") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        var cluster = string.Join(",", _ports.Select((p, i) => $"m{i + 1}=http://127.0.0.1:{p.Peer}"));
        foreach (var arg in new[]
        {
            "--name", $"m{member}", "--data-dir", Path.Combine(_root, $"etcd-{member}"),
            "--listen-client-urls", $"http://127.0.0.1:{client}", "--advertise-client-urls", $"http://127.0.0.1:{client}",
            "--listen-peer-urls", $"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", $"http://127.0.0.1:{peer}",
            "--initial-cluster", cluster, "--initial-cluster-token", "tributary-faults", "--log-level", "error", "--logger", "zap",
        })
            info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        process.ErrorDataReceived += (_, _) => { };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        _members[member - 1] = process;
    }

    private async Task WaitHealthyAsync(int member)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var url = $"http://127.0.0.1:{_ports[member - 1].Client}/health";
        await Tributary.Testing.Eventually.TrueAsync(async () =>
        {
            try
            {
                return (await http.GetStringAsync(url)).Contains("\"health\":\"true\"", StringComparison.Ordinal);
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                return false;
            }
        }, TimeSpan.FromSeconds(60), $"etcd member {member} healthy");
    }

    public ValueTask DisposeAsync()
    {
        for (var m = 1; m <= Members; m++) Kill(m);
        return ValueTask.CompletedTask;
    }
}
