using Tributary.Broker;

namespace Tributary.Cli.Tests;

public sealed class BrokerConfigTests
{
    [Fact]
    public void ReadsServerPropertiesWithKafkaNames()
    {
        var path = Path.GetTempFileName();
        File.WriteAllText(path, """
            # a comment
            ! another
            listeners=PLAINTEXT://127.0.0.1:29092
            advertised.listeners=PLAINTEXT://broker.example:29092
            log.dirs=/var/lib/tributary
            log.retention.hours=24
            num.partitions = 6
            long.value=first\
              second
            """);
        try
        {
            var config = BrokerConfig.FromPropertiesFile(path);
            Assert.Equal("127.0.0.1", config.ListenHost);
            Assert.Equal(29092, config.ListenPort);
            Assert.Equal("broker.example", config.AdvertisedHost);
            Assert.Equal("/var/lib/tributary", config.DataDir);
            Assert.Equal("24", config.Settings["log.retention.hours"]);
            Assert.Equal("6", config.Settings["num.partitions"]);
            Assert.Equal("firstsecond", config.Settings["long.value"]);
            var settings = new BrokerSettings(config.Settings);
            Assert.Equal("86400000", settings.TopicDefault("retention.ms"));
            Assert.Equal(6, settings.DefaultPartitions);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SetOverridesOneSetting()
    {
        var config = new BrokerConfig();
        config.Set("log.segment.bytes=1048576");
        Assert.Equal("1048576", config.Settings["log.segment.bytes"]);
        Assert.Throws<FormatException>(() => config.Set("no-equals-sign"));
    }

    [Fact]
    public void BadSettingValuesAreRefusedAtStart()
    {
        var e = Assert.Throws<ArgumentException>(() => new BrokerSettings(new Dictionary<string, string> { ["log.retention.ms"] = "forever" }));
        Assert.Contains("log.retention.ms", e.Message);
        Assert.Throws<ArgumentException>(() => new BrokerSettings(new Dictionary<string, string> { ["log.flush.policy"] = "sometimes" }));
    }
}
