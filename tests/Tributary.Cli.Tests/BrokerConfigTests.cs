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
    public void ReadsSeveralNamedListenersAndTheirAdvertisedAddresses()
    {
        var config = new BrokerConfig();
        config.Apply("listeners", "PLAINTEXT://:9092, ssl://0.0.0.0:9093,INTERNAL://[::1]:9094");
        config.Apply("advertised.listeners", "PLAINTEXT://broker.example:9092,SSL://broker.example:19093");

        Assert.Equal([new("PLAINTEXT", "0.0.0.0", 9092), new("SSL", "0.0.0.0", 9093), new ListenerAddress("INTERNAL", "::1", 9094)], config.Listeners);
        Assert.Equal(("broker.example", 9092), (config.AdvertisedHost, config.AdvertisedPort));
        Assert.Equal(new ListenerAddress("SSL", "broker.example", 19093), config.AdvertisedFor("ssl"));
        Assert.Null(config.AdvertisedFor("INTERNAL"));
        Assert.Throws<FormatException>(() => config.Apply("listeners", "A://h:1,a://h:2"));
        Assert.Throws<FormatException>(() => config.Apply("listeners", "BAD-NAME://h:1"));
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
    public void LogDirsListsEveryDataDirectoryAndWinsOverLogDir()
    {
        var config = new BrokerConfig();
        config.Apply("log.dirs", " /data/a , /data/b,,/data/c ");
        config.Apply("log.dir", "/data/ignored");

        Assert.Equal("/data/a", config.DataDir);
        Assert.Equal(["/data/a", "/data/b", "/data/c"], config.DataDirs);

        var single = new BrokerConfig();
        single.Apply("log.dir", "/data/one");
        Assert.Equal(["/data/one"], single.DataDirs);
        Assert.Throws<FormatException>(() => new BrokerConfig().Apply("log.dirs", "/data/a,/data/b,/data/a/"));
        Assert.Throws<FormatException>(() => new BrokerConfig().Apply("log.dirs", " , "));
    }

    [Fact]
    public void BadSettingValuesAreRefusedAtStart()
    {
        var e = Assert.Throws<ArgumentException>(() => new BrokerSettings(new Dictionary<string, string> { ["log.retention.ms"] = "forever" }));
        Assert.Contains("log.retention.ms", e.Message);
        Assert.Throws<ArgumentException>(() => new BrokerSettings(new Dictionary<string, string> { ["log.flush.policy"] = "sometimes" }));
    }
}

/// <summary>Issue 12 #3: one table of broker settings; bad values stop start-up, unknown names are reported.</summary>
public sealed class BrokerSettingsTableTests
{
    public static TheoryData<string> Names => [.. BrokerSettingDefinitions.All.Select(d => d.Name)];

    [Theory]
    [MemberData(nameof(Names))]
    public void Every_default_passes_its_own_check(string name)
    {
        var def = BrokerSettingDefinitions.Get(name);
        if (def.Default is { Length: > 0 } value) Assert.Null(BrokerSettingDefinitions.Check(def, value));
        Assert.False(string.IsNullOrWhiteSpace(def.Doc));
    }

    [Theory]
    [InlineData("num.partitions", "abc")]
    [InlineData("num.partitions", "0")]
    [InlineData("auto.create.topics.enable", "yes")]
    [InlineData("schema.registry.enable", "maybe")] // was read as true
    [InlineData("log.level", "verbose")] // was ignored
    [InlineData("controller.mutation.rate", "fast")]
    [InlineData("fetch.max.bytes", "10")]
    [InlineData("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1")] // was raised to 10 silently
    [InlineData("schema.compatibility.level", "SIDEWAYS")]
    [InlineData("log.segment.bytes", "-5")] // a topic config's broker default, checked by the topic table
    public void A_bad_value_stops_start_up_naming_the_setting(string name, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => new BrokerSettings(new Dictionary<string, string> { [name] = value }));
        Assert.StartsWith(name + ":", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_names_are_kept_for_a_warning_and_known_ones_are_not()
    {
        var settings = new BrokerSettings(new Dictionary<string, string> { ["log.retention.hourz"] = "1", ["num.partitions"] = "3" });
        Assert.Equal(["log.retention.hourz"], settings.UnknownNames);
        Assert.Equal(3, settings.DefaultPartitions);
    }

    [Fact]
    public void Defaults_come_from_the_table()
    {
        var settings = new BrokerSettings(new Dictionary<string, string>());
        Assert.Equal(int.Parse(BrokerSettingDefinitions.Get("num.partitions").Default!), settings.DefaultPartitions);
        Assert.Equal(int.Parse(BrokerSettingDefinitions.Get("fetch.max.bytes").Default!), settings.FetchMaxBytes);
        Assert.Equal(long.Parse(BrokerSettingDefinitions.Get("connections.max.idle.ms").Default!), settings.Connections.IdleMs);
        Assert.Equal(int.Parse(BrokerSettingDefinitions.Get("offsets.topic.num.partitions").Default!), Tributary.Broker.Groups.GroupSettings.From(settings).OffsetsTopicPartitions);
    }

    [Fact]
    public void Help_config_lists_every_setting()
    {
        var help = Tributary.Cli.Commands.ServeCommand.SettingsHelp();
        foreach (var def in BrokerSettingDefinitions.All) Assert.Contains("\n" + def.Name + "  (", help, StringComparison.Ordinal);
    }
}
