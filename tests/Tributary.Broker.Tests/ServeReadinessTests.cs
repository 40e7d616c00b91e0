using System.Net;
using Xunit.Abstractions;

namespace Tributary.Broker.Tests;

/// <summary>
/// Issue 19 #11: `tributary serve` says it is listening only once every listener accepts, so a script that waits for
/// the line can use the Kafka port and the registry's port at once (it once printed the line about a second before the
/// registry's port accepted).
/// </summary>
[Trait("Category", "Slow")]
public sealed class ServeReadinessTests(ITestOutputHelper output)
{
    [Fact]
    public async Task When_serve_reports_it_is_listening_the_registry_already_answers()
    {
        var registryPort = ServeProcess.FreePort();
        using var serve = await ServeProcess.StartAsync(output, new Dictionary<string, string>
        {
            [TributaryServer.SchemaRegistryListenersSetting] = $"http://127.0.0.1:{registryPort}",
        });

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var response = await http.GetAsync($"http://127.0.0.1:{registryPort}/subjects");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("[]", await response.Content.ReadAsStringAsync());
        Assert.Contains(serve.Lines, l => l.StartsWith("Tributary listening", StringComparison.Ordinal) && l.Contains($"schema registry on http://127.0.0.1:{registryPort}", StringComparison.Ordinal));
        await Hostile.NormalClient.RoundTripAsync(serve.Bootstrap);
    }
}
