namespace Tributary.Fuzz;

/// <summary>
/// Cheap, seeded libFuzzer-style mutations of corpus entries for the replay test: bit flips, byte overwrites with
/// interesting values, truncation, insertion, deletion, and splicing, applied one to four times. Deterministic for a
/// given seed, so a failure in CI replays exactly.
/// </summary>
public static class CorpusMutator
{
    private static readonly byte[] Interesting = [0x00, 0x01, 0x7F, 0x80, 0xFF, 0xFE, 0x40, 0x10];

    public static byte[] Mutate(byte[] seed, IReadOnlyList<byte[]> corpus, Random random)
    {
        var data = new List<byte>(seed);
        var steps = random.Next(1, 5);
        for (var s = 0; s < steps; s++)
        {
            // Leave the api key alone most of the time, so mutations stay inside the parser they started in.
            var from = data.Count > 2 && random.Next(8) != 0 ? 2 : 0;
            var at = data.Count > from ? random.Next(from, data.Count) : 0;
            switch (random.Next(7))
            {
                case 0 when data.Count > 0:
                    data[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1 when data.Count > 0:
                    data[at] = Interesting[random.Next(Interesting.Length)];
                    break;
                case 2 when data.Count > 0:
                    // A length or count field made huge or negative.
                    for (var i = at; i < Math.Min(data.Count, at + 4); i++) data[i] = random.Next(2) == 0 ? (byte)0xFF : (byte)0x7F;
                    break;
                case 3 when data.Count > 1:
                    var cut = random.Next(data.Count);
                    data.RemoveRange(cut, data.Count - cut);
                    break;
                case 4:
                    data.InsertRange(at, Enumerable.Range(0, random.Next(1, 9)).Select(_ => (byte)random.Next(256)));
                    break;
                case 5 when data.Count > 1:
                    data.RemoveRange(at, Math.Min(random.Next(1, 9), data.Count - at));
                    break;
                case 6 when corpus.Count > 0:
                    var other = corpus[random.Next(corpus.Count)];
                    if (other.Length > 0)
                    {
                        var start = random.Next(other.Length);
                        var length = Math.Min(random.Next(1, 64), other.Length - start);
                        data.InsertRange(at, other.Skip(start).Take(length));
                    }
                    break;
            }
        }
        return [.. data];
    }
}
