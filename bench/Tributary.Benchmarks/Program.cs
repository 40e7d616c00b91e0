using BenchmarkDotNet.Running;
using Tributary.Benchmarks;

// Microbenchmarks of the hot paths: dotnet run -c Release --project bench/Tributary.Benchmarks -- --filter '*'
// One cleaner pass over a 512 MiB dirty log:  dotnet run -c Release --project bench/Tributary.Benchmarks -- cleaner-throughput
if (args is ["cleaner-throughput"]) return await CleanerThroughput.RunAsync();
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

public partial class Program;
