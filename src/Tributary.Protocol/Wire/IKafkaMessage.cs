namespace Tributary.Protocol.Wire;

/// <summary>A generated protocol message or header: version-aware reading and writing.</summary>
public interface IKafkaMessage
{
    void Read(ref KafkaReader reader, short version);
    void Write(KafkaWriter writer, short version);
}

public interface IKafkaRequest : IKafkaMessage
{
    short ApiKey { get; }
}

public interface IKafkaResponse : IKafkaMessage
{
    short ApiKey { get; }
}
