namespace Tributary.Cli.Output;

/// <summary>A failure caused by the user's input or the cluster's answer, shown as one line without a stack trace.</summary>
public sealed class CliException(string message) : Exception(message);
