using BenchmarkDotNet.Running;

// Microbenchmarks of the hot paths: dotnet run -c Release --project bench/Tributary.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);

public partial class Program;
