using System.Globalization;
using Tributary.Broker.Metadata;

namespace Tributary.Broker;

/// <summary>
/// Every broker setting Tributary reads, under Kafka's name where Kafka has one: its type, default, check and meaning.
/// <see cref="BrokerSettings"/> checks what it is given against this table at start (a bad value stops start-up
/// naming the setting; an unknown name is warned about, as Kafka logs "supplied but isn't a known config"), its typed
/// getters take their defaults from here, DescribeConfigs on the BROKER resource answers from here, and
/// <c>tributary serve --help-config</c> prints it. The broker-level defaults of topic configs
/// (<c>log.retention.ms</c> for <c>retention.ms</c>, ...) come from <see cref="TopicConfigDefinitions"/> and are part of
/// the table. Every setting is read once, at start, except those marked <see cref="Definition.Dynamic"/>: as in Kafka,
/// IncrementalAlterConfigs / AlterConfigs on a BROKER resource (a node id, or "" for the cluster-wide default) sets them
/// in the metadata store, and a broker's own value wins over the default, which wins over the one given at start.
/// </summary>
public static class BrokerSettingDefinitions
{
    public enum SettingType
    {
        Boolean,
        String,
        Int,
        Long,
        Double,
        List,

        /// <summary>A secret: described as sensitive, its value never shown.</summary>
        Password,
    }

    /// <param name="Default">Null when the default is computed at start (said in <paramref name="Doc"/>).</param>
    /// <param name="Check">Beyond the type: null when the (trimmed) value is acceptable, else why not.</param>
    public sealed record Definition(string Name, SettingType Type, string? Default, string Doc, Func<string, string?>? Check = null, bool Dynamic = false);

    private static Func<string, string?> AtLeast(long min) => v => long.Parse(v, CultureInfo.InvariantCulture) >= min ? null : $"must be at least {min}";

    private static Func<string, string?> OneOf(params string[] options) => v =>
        options.Contains(v, StringComparer.OrdinalIgnoreCase) ? null : $"must be one of {string.Join(", ", options)}";

    private static readonly Definition[] Own =
    [
        // Identity and listeners (listeners, advertised.listeners, log.dirs and log.dir are read by BrokerConfig; log.dirs is
        // a comma-separated list of data directories, the first holding the broker's own files, see docs/configs.md).
        new("node.id", SettingType.Int, "1", "This broker's id.", AtLeast(0)),
        new("broker.id", SettingType.Int, "1", "Kafka's older name for node.id; node.id wins.", AtLeast(0)),
        new("log.level", SettingType.String, null, "Broker log level; default info for `tributary serve`, warn for a broker embedded in tests.", OneOf("debug", "info", "warn", "error", "none")),

        // Clusters (docs/clusters.md).
        new("metadata.store", SettingType.String, null, "Where the cluster's metadata lives: unset for this broker alone (local files), or etcd://host:port[,host:port...] for a cluster."),
        new("broker.rack", SettingType.String, null, "This broker's rack: replicas of a partition are spread over racks, and consumers with client.rack fetch from a replica in theirs."),
        new("broker.session.timeout.ms", SettingType.Int, "9000", "A broker whose registration is not renewed for this long is taken as dead: its leaderships move (the etcd lease's time to live).", AtLeast(2000)),
        new("default.replication.factor", SettingType.Int, "1", "Replicas of an auto-created topic, and of CreateTopics asking for -1.", AtLeast(1)),
        new("offsets.topic.replication.factor", SettingType.Int, "3", "Replicas of __consumer_offsets (at most the brokers registered when it is created).", AtLeast(1)),
        new("transaction.state.log.replication.factor", SettingType.Int, "3", "Replicas of __transaction_state (at most the brokers registered when it is created).", AtLeast(1)),
        new("replica.lag.time.max.ms", SettingType.Long, "30000", "A follower that has not caught up with the leader's log end for this long leaves the ISR.", AtLeast(1)),
        new("replica.fetch.wait.max.ms", SettingType.Int, "500", "How long a follower's fetch waits at the leader for new records.", AtLeast(0)),
        new("replica.fetch.max.bytes", SettingType.Int, "1048576", "Bytes per partition a follower asks for in one fetch.", AtLeast(1)),
        new("replica.selector.class", SettingType.String, null, "KIP-392: org.apache.kafka.common.replica.RackAwareReplicaSelector sends a consumer with client.rack to an in-sync replica in its rack (fetch from follower); unset, consumers read from leaders.",
            OneOf(Tributary.Broker.Replication.RackAwareReplicaSelector.ClassName)),
        new("unclean.leader.election.enable", SettingType.Boolean, "false", "A partition whose in-sync replicas are all gone may be led by an out-of-sync replica (losing what it lacks)."),
        new("controlled.shutdown.enable", SettingType.Boolean, "true", "A stopping broker first moves its leaderships to other in-sync replicas."),
        new("auto.leader.rebalance.enable", SettingType.Boolean, "true", "The controller moves leadership back to each partition's preferred replica when it is in sync."),
        new("leader.imbalance.check.interval.seconds", SettingType.Long, "300", "How often the controller checks whether leaderships should go back to preferred replicas.", AtLeast(1)),
        new("leader.imbalance.per.broker.percentage", SettingType.Int, "10", "The share of a broker's preferred partitions led elsewhere above which the controller moves them back (0: any).", AtLeast(0)),
        new("max.request.partition.size.limit", SettingType.Int, "2000", "The most partitions one DescribeTopicPartitions response holds; the rest come with a cursor.", AtLeast(1)),
        new("leader.replication.throttled.rate", SettingType.Long, "9223372036854775807",
            "Bytes per second this broker, as leader, sends to replicas of throttled partitions (leader.replication.throttled.replicas) that are not in the ISR, as a reassignment's new replicas. Dynamic.",
            AtLeast(0), Dynamic: true),
        new("follower.replication.throttled.rate", SettingType.Long, "9223372036854775807",
            "Bytes per second this broker, as follower, fetches for its throttled replicas (follower.replication.throttled.replicas) while they are not in the ISR. Dynamic.",
            AtLeast(0), Dynamic: true),

        // Listeners and TLS (docs/security.md). Every ssl.* setting can be given for one listener as listener.name.<name>.ssl.*.
        new("listener.security.protocol.map", SettingType.List, Network.ListenerSecurity.DefaultProtocolMap,
            "The security protocol of each listener name, NAME:PROTOCOL,... (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL).",
            v => { try { Network.ListenerSecurity.ParseMap(v); return null; } catch (FormatException e) { return e.Message; } }),
        new("inter.broker.listener.name", SettingType.String, null, "The listener brokers connect to each other through; default: the one named by security.inter.broker.protocol, or the only listener."),
        new("security.inter.broker.protocol", SettingType.String, "PLAINTEXT", "Names the inter-broker listener when inter.broker.listener.name is not set.", OneOf("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")),
        new("ssl.keystore.type", SettingType.String, "PEM", "Format of ssl.keystore.location: PEM (key and certificate chain in one file) or PKCS12.", OneOf("PEM", "PKCS12")),
        new("ssl.keystore.location", SettingType.String, null, "The broker's TLS key and certificate chain (a PEM file, or PKCS12 with ssl.keystore.password)."),
        new("ssl.keystore.password", SettingType.Password, null, "Password of a PKCS12 keystore."),
        new("ssl.keystore.certificate.chain", SettingType.Password, null, "The broker's certificate chain as inline PEM (with ssl.keystore.key), instead of ssl.keystore.location."),
        new("ssl.keystore.key", SettingType.Password, null, "The broker's private key as inline PEM (with ssl.keystore.certificate.chain)."),
        new("ssl.key.password", SettingType.Password, null, "Password of an encrypted private key."),
        new("ssl.certificate.location", SettingType.String, null, "A PEM certificate file (librdkafka's name), with ssl.key.location, instead of ssl.keystore.location."),
        new("ssl.key.location", SettingType.String, null, "The PEM private key file that goes with ssl.certificate.location."),
        new("ssl.truststore.type", SettingType.String, "PEM", "Format of ssl.truststore.location: PEM or PKCS12.", OneOf("PEM", "PKCS12")),
        new("ssl.truststore.location", SettingType.String, null, "Certificates trusted to sign client certificates (and other brokers' certificates); default: the system's."),
        new("ssl.truststore.password", SettingType.Password, null, "Password of a PKCS12 truststore."),
        new("ssl.truststore.certificates", SettingType.Password, null, "Trusted certificates as inline PEM."),
        new("ssl.ca.location", SettingType.String, null, "A PEM file of trusted certificates (librdkafka's name for a truststore)."),
        new("ssl.client.auth", SettingType.String, "none", "Client certificates on TLS listeners: required, requested or none; the certificate's subject is the client's principal.", OneOf("required", "requested", "none")),
        new("ssl.enabled.protocols", SettingType.List, "TLSv1.2,TLSv1.3", "TLS versions accepted (TLSv1.2, TLSv1.3)."),
        new("ssl.cipher.suites", SettingType.List, "", "IANA names of the cipher suites offered (empty: the system's defaults)."),
        new("ssl.endpoint.identification.algorithm", SettingType.String, "https", "https: a broker connecting to another over TLS checks the host name in its certificate; empty: it does not."),
        new("sasl.enabled.mechanisms", SettingType.List, "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", "Mechanisms SASL listeners offer: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER."),
        new("sasl.mechanism.inter.broker.protocol", SettingType.String, "PLAIN", "The mechanism a broker authenticates to the others with over a SASL inter-broker listener (PLAIN or SCRAM-SHA-256/512).",
            OneOf("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")),
        new("sasl.jaas.config", SettingType.Password, null,
            "JAAS login module line: PLAIN users as user_NAME=\"password\" options; username and password are what this broker presents to the others. Usually given as listener.name.<listener>.<mechanism>.sasl.jaas.config."),
        new("sasl.plain.users.file", SettingType.String, null, "A file of name=password lines: more PLAIN users (Tributary's setting)."),
        new("sasl.server.callback.handler.class", SettingType.String, null, "Accepted for Kafka configs; Tributary validates OAUTHBEARER tokens itself against sasl.oauthbearer.jwks.endpoint.url."),
        new("sasl.oauthbearer.jwks.endpoint.url", SettingType.String, null, "The JWKS (https://, http:// or file:) whose keys sign OAUTHBEARER tokens."),
        new("sasl.oauthbearer.jwks.endpoint.refresh.ms", SettingType.Long, "3600000", "How often the JWKS is fetched again.", AtLeast(1000)),
        new("sasl.oauthbearer.expected.issuer", SettingType.String, null, "The iss an OAUTHBEARER token must have; unset: not checked."),
        new("sasl.oauthbearer.expected.audience", SettingType.List, "", "Audiences of which an OAUTHBEARER token must name one; empty: not checked."),
        new("sasl.oauthbearer.sub.claim.name", SettingType.String, "sub", "The token claim that names the principal."),
        new("sasl.oauthbearer.clock.skew.seconds", SettingType.Int, "30", "Clock difference allowed when checking a token's times.", AtLeast(0)),
        new("connections.max.reauth.ms", SettingType.Long, "0", "KIP-368: a SASL session lasts at most this long, then the client must re-authenticate (0: no limit).", AtLeast(0)),
        new("connection.failed.authentication.delay.ms", SettingType.Int, "100", "A failed SASL login is answered after this delay, then the connection closes.", AtLeast(0)),
        new("ssl.principal.mapping.rules", SettingType.String, "DEFAULT", "How a client certificate's subject becomes a principal: RULE:pattern/replacement/[LU],... then DEFAULT (the whole subject)."),

        // ACLs (docs/security.md#acls).
        new("authorizer.class.name", SettingType.String, "", "Turns ACLs on: kafka.security.authorizer.AclAuthorizer or org.apache.kafka.metadata.authorizer.StandardAuthorizer (the same authorizer); empty: no authorizer, everything is allowed.",
            v => v.Length == 0 || v is Security.Authorizer.AclAuthorizerClass or Security.Authorizer.StandardAuthorizerClass ? null
                : $"must be empty, {Security.Authorizer.AclAuthorizerClass} or {Security.Authorizer.StandardAuthorizerClass}"),
        new("super.users", SettingType.String, "", "Principals allowed everything whatever the ACLs say, separated by semicolons (User:admin;User:CN=broker,O=Example)."),
        new("allow.everyone.if.no.acl.found", SettingType.Boolean, "false", "With an authorizer, a resource no ACL applies to is open to everyone (true) or to super users only (false)."),

        // Topics.
        new("num.partitions", SettingType.Int, "1", "Partitions of an auto-created topic, and of CreateTopics asking for -1.", AtLeast(1)),
        new("auto.create.topics.enable", SettingType.Boolean, "true", "Metadata and Produce create a topic they name that does not exist."),
        new("delete.topic.enable", SettingType.Boolean, "true", "DeleteTopics is allowed."),
        new("max.broker.partitions", SettingType.Int, "4000", "Partitions this broker holds at most; a creation beyond it is POLICY_VIOLATION (KIP-578's name).", AtLeast(0)),
        new("controller.mutation.rate", SettingType.Double, "200", "Partitions a client id may create or delete per second (KIP-599's controller_mutation_rate quota); 0 or less: unlimited."),
        new("controller.quota.window.num", SettingType.Int, "11", "Windows of the mutation quota's burst.", AtLeast(1)),
        new("quota.window.num", SettingType.Int, "11", "Windows a client quota's rate is measured over (with quota.window.size.seconds: the burst a client may take at once).", AtLeast(1)),
        new("quota.window.size.seconds", SettingType.Int, "1", "Seconds per window of a client quota.", AtLeast(1)),
        new("controller.quota.window.size.seconds", SettingType.Int, "1", "Seconds per window of the mutation quota.", AtLeast(1)),

        // Log storage.
        new("log.flush.policy", SettingType.String, "durable", "durable: acknowledge after fsync (acks=all and acks=1); page-cache: after the write, as Kafka's default.", OneOf("durable", "fsync", "page-cache", "pagecache")),
        new("log.retention.check.interval.ms", SettingType.Long, "300000", "How often retention deletes expired segments.", AtLeast(1)),
        new("log.retention.minutes", SettingType.Long, null, "retention.ms's default in minutes, when log.retention.ms is not set.", AtLeast(-1)),
        new("log.retention.hours", SettingType.Long, null, "retention.ms's default in hours, when neither log.retention.ms nor .minutes is set (Kafka's default: 168).", AtLeast(-1)),
        new("log.roll.hours", SettingType.Long, null, "segment.ms's default in hours, when log.roll.ms is not set.", AtLeast(1)),
        new("log.max.open.files", SettingType.Int, null, "Segment files kept open at most; default: half of what ulimit -n leaves after a 384-descriptor runtime reserve.", AtLeast(0)),
        new("log.cleaner.enable", SettingType.Boolean, "true", "Compacted topics are cleaned."),
        new("log.cleaner.dedupe.buffer.size", SettingType.Long, "134217728", "Memory for the cleaner's key map.", AtLeast(1 << 20)),
        new("log.cleaner.io.max.bytes.per.second", SettingType.Double, null, "Cleaner read and write rate; default unlimited."),
        new("log.cleaner.backoff.ms", SettingType.Long, "15000", "Cleaner sleep when nothing is cleanable.", AtLeast(0)),

        // Requests and connections.
        new("socket.request.max.bytes", SettingType.Int, "104857600", "Largest request frame accepted.", AtLeast(1024)),
        new("fetch.max.bytes", SettingType.Int, "57671680", "Most record bytes in one fetch response, whatever the request asks.", AtLeast(1024)),
        new("queued.max.requests.per.connection", SettingType.Int, "128", "Requests of one connection in flight at once (Tributary pipelines them).", AtLeast(1)),
        new("queued.max.request.bytes", SettingType.Long, "-1", "Request bytes held broker-wide; at the limit connections stop reading. -1: unbounded.", v => v == "-1" || long.Parse(v, CultureInfo.InvariantCulture) > 0 ? null : "must be -1 or positive"),
        new("queued.max.response.bytes.per.connection", SettingType.Long, "67108864", "Response bytes one connection may have in flight; past it the connection is not read until it drains.", AtLeast(1)),
        new("max.connections", SettingType.Int, null, "Connections at most; at the limit the listener waits for one to close. Default: what ulimit -n leaves after the runtime reserve and log.max.open.files.", AtLeast(1)),
        new("max.connections.per.ip", SettingType.Int, "2147483647", "Connections per client address; beyond it a connection is closed after accept.", AtLeast(0)),
        new("max.connections.per.ip.overrides", SettingType.List, "", "host:count,... exceptions to max.connections.per.ip."),
        new("max.connection.creation.rate", SettingType.Int, "2147483647", "Connections accepted per second over every listener but the inter-broker one (KIP-612); beyond it accepting waits.", AtLeast(1)),
        new("connections.max.idle.ms", SettingType.Long, "600000", "A connection silent for this long is closed.", AtLeast(1)),
        new("socket.request.receive.timeout.ms", SettingType.Long, "30000", "A request frame must arrive whole within this time of its size prefix.", AtLeast(1)),

        // Consumer groups.
        new("offsets.topic.num.partitions", SettingType.Int, "50", "Partitions of __consumer_offsets (when it is created).", AtLeast(1)),
        new("group.initial.rebalance.delay.ms", SettingType.Int, "3000", "Wait for more members before the first rebalance of an empty classic group.", AtLeast(0)),
        new("group.min.session.timeout.ms", SettingType.Int, "6000", "Smallest session timeout a classic member may ask for.", AtLeast(0)),
        new("group.max.session.timeout.ms", SettingType.Int, "1800000", "Largest session timeout a classic member may ask for.", AtLeast(0)),
        new("group.max.size", SettingType.Int, "2147483647", "Members of one group at most.", AtLeast(1)),
        new("offset.metadata.max.bytes", SettingType.Int, "4096", "Largest metadata string of a committed offset.", AtLeast(0)),
        new("group.consumer.heartbeat.interval.ms", SettingType.Int, "5000", "Heartbeat interval of consumer-protocol (KIP-848) members.", AtLeast(1)),
        new("group.consumer.session.timeout.ms", SettingType.Int, "45000", "Session timeout of consumer-protocol (KIP-848) members.", AtLeast(1)),
        new("group.consumer.regex.refresh.interval.ms", SettingType.Int, "600000", "How often a consumer-protocol group's regex subscriptions are resolved again even when no topic was created (Kafka's internal setting, at least 10 s).", AtLeast(10_000)),
        new("offsets.retention.minutes", SettingType.Long, "10080", "How long the offsets of an empty group are kept.", AtLeast(1)),
        new("offsets.retention.check.interval.ms", SettingType.Long, "600000", "How often expired offsets are removed.", AtLeast(1)),

        // Transactions.
        new("transaction.state.log.num.partitions", SettingType.Int, "50", "Partitions of __transaction_state (when it is created).", AtLeast(1)),
        new("transaction.max.timeout.ms", SettingType.Int, "900000", "Largest transaction timeout a producer may ask for.", AtLeast(1)),
        new("transaction.abort.timed.out.transaction.cleanup.interval.ms", SettingType.Int, "10000", "How often timed-out transactions are aborted.", AtLeast(10)),
        new("transactional.id.expiration.ms", SettingType.Long, "604800000", "A transactional id unused for this long is forgotten.", AtLeast(1)),
        new("producer.id.expiration.ms", SettingType.Long, "86400000", "An idempotent producer's state unused for this long is dropped.", AtLeast(1)),
        new("transaction.version", SettingType.Int, "2",
            "The finalized transaction.version feature ApiVersions advertises (Kafka's kafka-features): 2 lets clients use KIP-890 part 2 (Produce v12, TxnOffsetCommit v5, EndTxn v5 with an epoch bump on every end); 0 or 1 keeps them on the older flow.",
            OneOf("0", "1", "2")),

        // Console: metrics and health probes.
        new("console.listeners", SettingType.String, "http://0.0.0.0:8080",
            "Where /metrics (Prometheus), /health/live and /health/ready are served: http://host:port, comma-separated (port 0: any free port; empty: off)."),

        // Schema registry.
        new("schema.registry.enable", SettingType.Boolean, "true", "Serve the Confluent-compatible schema registry."),
        new("schema.registry.listeners", SettingType.String, "http://0.0.0.0:8081", "Where the schema registry listens: http://host:port and/or https://host:port (schema.registry.ssl.*), comma-separated (port 0: any free port)."),
        new("schema.registry.advertised.listener", SettingType.String, null,
            "The URL (http://host:port) the other brokers forward registry writes to while this broker leads _schemas; default: the bound listener, a wildcard host replaced by this broker's advertised host."),
        new("schema.registry.topic.replication.factor", SettingType.Int, "3",
            "Replicas of _schemas (at most the brokers registered when the first registry write creates it).", AtLeast(1)),
        new("kafkastore.topic.replication.factor", SettingType.Int, null,
            "Confluent's name for schema.registry.topic.replication.factor, accepted as an alias; the Tributary name wins when both are set.", AtLeast(1)),
        new("schema.compatibility.level", SettingType.String, "BACKWARD", "The registry's default compatibility level.",
            OneOf("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE")),

        // Schema registry security (docs/security.md, "Schema registry"). Every ssl.* setting can be given for the
        // registry's https listeners as schema.registry.ssl.*, and every sasl.oauthbearer.* one for its bearer tokens as
        // schema.registry.oauthbearer.* (Confluent's names); the broker's own ssl.* are not used for the registry.
        new("schema.registry.ssl.client.authentication", SettingType.String, null,
            "Confluent's name: client certificates on the registry's https listeners, NONE, REQUESTED or REQUIRED; wins over schema.registry.ssl.client.auth.",
            OneOf("NONE", "REQUESTED", "REQUIRED")),
        new("schema.registry.ssl.client.auth", SettingType.String, "none", "Client certificates on the registry's https listeners: required, requested or none (or Confluent's older true/false).",
            OneOf("required", "requested", "none", "true", "false")),
        new("schema.registry.authentication.method", SettingType.List, "NONE",
            "How registry requests authenticate, comma-separated: NONE, BASIC (HTTP Basic), BEARER (OAuth JWTs), SSL (the client certificate's subject, through schema.registry.ssl.principal.mapping.rules).",
            v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).All(m => m.ToUpperInvariant() is "NONE" or "BASIC" or "BEARER" or "SSL") ? null : "must list NONE, BASIC, BEARER and/or SSL"),
        new("schema.registry.authentication.failure.delay.ms", SettingType.Int, "100",
            "Wrong registry credentials are answered 401 after this delay (as connection.failed.authentication.delay.ms for SASL); requests that succeed are not delayed.", AtLeast(0)),
        new("schema.registry.authentication.realm", SettingType.String, "SchemaRegistry", "The realm named in the registry's WWW-Authenticate challenges."),
        new("schema.registry.authentication.roles", SettingType.List, "*", "Confluent's: the roles a user must have one of to authenticate (* : any user, with or without roles)."),
        new("schema.registry.basic.auth.users.file", SettingType.String, null,
            "Registry users for BASIC: Confluent's (Jetty) property file, name: password[,role...] lines (also name=password); an MD5: password is a hex MD5 digest."),
        new("schema.registry.basic.auth.sources", SettingType.List, "file,plain,scram",
            "Where BASIC passwords are checked, in order: file (schema.registry.basic.auth.users.file), plain (the SASL PLAIN users of the broker's listeners), scram (SCRAM credentials in the cluster metadata).",
            v => v.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).All(m => m.ToLowerInvariant() is "file" or "plain" or "scram") ? null : "must list file, plain and/or scram"),
        new("schema.registry.oauthbearer.groups.claim.name", SettingType.String, "groups", "The bearer token claim (a string or a list) whose values are the principal's roles."),
        new("schema.registry.anonymous.access", SettingType.Boolean, "false",
            "With an authentication method, requests without credentials act as schema.registry.anonymous.principal instead of being refused with 401."),
        new("schema.registry.anonymous.principal", SettingType.String, "ANONYMOUS", "The principal of requests without credentials when schema.registry.anonymous.access is true."),
        new("schema.registry.authorization.enable", SettingType.Boolean, "true",
            "With an authentication method, check each request against the principal's roles (schema.registry.authorization.roles); false: every authenticated principal may do everything, as Confluent without its security plugin."),
        new("schema.registry.authorization.roles", SettingType.String, "admin=admin;write=write;read=read",
            "What each role may do: role=grant[,grant...];... where a grant is read, write or admin (each includes the ones before it), optionally :PREFIX for the subjects starting with PREFIX.",
            v => CheckEntries(v, grant => grant.Split(':', 2)[0].ToLowerInvariant() is "read" or "write" or "admin" ? null : $"grant '{grant}' is not read, write or admin[:PREFIX]")),
        new("schema.registry.authorization.user.roles", SettingType.String, "",
            "Roles of principals, beyond those of the users file and the token's groups claim: name=role[,role...];... (for SASL users, token subjects, the anonymous principal).",
            v => CheckEntries(v, _ => null)),
    ];

    /// <summary>name=value[,value...];... with every value passing <paramref name="checkValue"/> (the registry's role maps).</summary>
    private static string? CheckEntries(string text, Func<string, string?> checkValue)
    {
        foreach (var entry in text.Split(';', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0) return $"'{entry}' is not name=value[,value...]";
            foreach (var value in entry[(equals + 1)..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                if (checkValue(value) is { } problem) return problem;
        }
        return null;
    }

    /// <summary>Tributary's own settings, then the broker defaults of topic configs, by name.</summary>
    public static readonly IReadOnlyList<Definition> All = [.. Own, .. TopicDefaults().Where(d => !Own.Any(o => o.Name == d.Name))];

    private static readonly Dictionary<string, Definition> ByName = All.ToDictionary(d => d.Name, StringComparer.Ordinal);

    /// <summary>
    /// The definition of a setting. As in Kafka, <c>listener.name.&lt;name&gt;.</c> before an ssl.*, sasl.* or
    /// connections.max.reauth.ms setting gives it for one listener, and <c>listener.name.&lt;name&gt;.&lt;mechanism&gt;.</c>
    /// before a sasl.* setting for one SASL mechanism of it.
    /// </summary>
    public static bool TryGet(string name, out Definition definition)
    {
        if (ByName.TryGetValue(name, out definition!)) return true;
        const string registry = "schema.registry.";
        if (name.StartsWith(registry + "ssl.", StringComparison.Ordinal)) return ByName.TryGetValue(name[registry.Length..], out definition!);
        if (name.StartsWith(registry + "oauthbearer.", StringComparison.Ordinal)) return ByName.TryGetValue("sasl." + name[registry.Length..], out definition!);
        const string prefix = "listener.name.";
        if (!name.StartsWith(prefix, StringComparison.Ordinal)) return false;
        var dot = name.IndexOf('.', prefix.Length);
        if (dot <= prefix.Length) return false;
        var rest = name[(dot + 1)..];
        foreach (var mechanism in Security.SaslMechanisms.All)
        {
            var mechanismPrefix = mechanism.ToLowerInvariant() + ".";
            if (rest.StartsWith(mechanismPrefix, StringComparison.Ordinal) && rest.AsSpan(mechanismPrefix.Length).StartsWith("sasl."))
                return ByName.TryGetValue(rest[mechanismPrefix.Length..], out definition!);
        }
        return (rest.StartsWith("ssl.", StringComparison.Ordinal) || rest.StartsWith("sasl.", StringComparison.Ordinal) || rest == "connections.max.reauth.ms")
            && ByName.TryGetValue(rest, out definition!);
    }

    public static Definition Get(string name) =>
        ByName.TryGetValue(name, out var definition) ? definition : throw new ArgumentException($"{name} is not a broker setting");

    /// <summary>Null when <paramref name="value"/> suits the setting, else why not (without the name).</summary>
    public static string? Check(Definition definition, string value)
    {
        var v = value.Trim();
        var typed = definition.Type switch
        {
            SettingType.Boolean => bool.TryParse(v, out _) ? null : "must be true or false",
            SettingType.Int => int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) ? null : "must be a 32-bit integer",
            SettingType.Long => long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out _) ? null : "must be an integer",
            SettingType.Double => double.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out _) ? null : "must be a number",
            _ => null,
        };
        return typed ?? definition.Check?.Invoke(v);
    }

    private static IEnumerable<Definition> TopicDefaults()
    {
        foreach (var topic in TopicConfigDefinitions.All)
        {
            if (topic.BrokerSetting is not { } name) continue;
            var type = ConfigTypes.Of(topic.Name, topic.Default) switch
            {
                ConfigTypes.Boolean => SettingType.Boolean,
                ConfigTypes.Int => SettingType.Int,
                ConfigTypes.Long => SettingType.Long,
                ConfigTypes.Double => SettingType.Double,
                ConfigTypes.List => SettingType.List,
                _ => SettingType.String,
            };
            var topicName = topic.Name;
            yield return new Definition(name, type, topic.Default, $"The default of topic config {topicName}. {topic.Doc}".TrimEnd(), v => topic.Validate(v));
        }
    }
}
