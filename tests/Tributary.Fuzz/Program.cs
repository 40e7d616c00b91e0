using SharpFuzz;

namespace Tributary.Fuzz;

/// <summary>
/// <c>Tributary.Fuzz</c> (no arguments): the libFuzzer target, run under libfuzzer-dotnet (see README.md).
/// <c>--replay DIR [--mutations N]</c>: every file of DIR (plus N seeded mutations) through the same target, without
/// libFuzzer; exit code 1 on an unexpected exception.
/// <c>--capture DIR</c>: seeds DIR with request frames from real clients (see <see cref="CaptureSession"/>).
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length >= 2 && args[0] == "--replay")
        {
            var mutations = args.Length >= 4 && args[2] == "--mutations" ? int.Parse(args[3]) : 0;
            var failures = CorpusReplay.Run(args[1], mutations, seed: 1);
            foreach (var failure in failures.Take(20)) Console.Error.WriteLine(failure);
            Console.WriteLine($"{failures.Count} unexpected exception(s)");
            return failures.Count == 0 ? 0 : 1;
        }
        if (args.Length >= 2 && args[0] == "--capture")
        {
            await CaptureSession.RunAsync(args[1]);
            return 0;
        }
        Fuzzer.LibFuzzer.Run(span => FuzzTargets.ParseRequest(span));
        return 0;
    }
}
