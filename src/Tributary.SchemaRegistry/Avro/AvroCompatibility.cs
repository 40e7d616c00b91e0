namespace Tributary.SchemaRegistry.Avro;

/// <summary>
/// Decides whether data written with one Avro schema can be read with another, by the schema resolution rules of the
/// Avro specification:
/// <list type="bullet">
/// <item>equal primitives match; the writer may be promoted int→long→float→double, int→float/double,
/// long→float/double, string↔bytes;</item>
/// <item>records, enums and fixed match when their unqualified names are equal or a reader alias names the writer;
/// fixed sizes must be equal;</item>
/// <item>a reader field missing from the writer (by name or by one of the reader field's aliases) needs a default;
/// writer fields the reader lacks are skipped;</item>
/// <item>a writer enum symbol unknown to the reader needs the reader enum's default;</item>
/// <item>a writer union needs every branch readable; a reader union needs some branch that reads the writer;</item>
/// <item>logical types are ignored: resolution works on the underlying types (as Avro's Java implementation does).</item>
/// </list>
/// Recursive types are handled by assuming a (reader, writer) pair compatible while it is being checked: a cycle
/// adds no new constraint. Issues carry a Confluent-style error type and the JSON path into the reader schema.
/// </summary>
internal sealed class AvroCompatibility
{
    private readonly List<string> _issues = [];
    private readonly HashSet<(AvroType, AvroType)> _inProgress;

    /// <summary>Nested <see cref="Visit"/> calls, trials included; bounded by <see cref="SchemaNesting.MaxDepth"/>.</summary>
    private int _depth;

    private AvroCompatibility(HashSet<(AvroType, AvroType)> inProgress, int depth)
    {
        _inProgress = inProgress;
        _depth = depth;
    }

    public static IReadOnlyList<string> Check(AvroType reader, AvroType writer)
    {
        var checker = new AvroCompatibility(new HashSet<(AvroType, AvroType)>(PairComparer.Instance), 0);
        checker.Visit(reader, writer, "");
        return checker._issues;
    }

    /// <summary>A trial check (a union branch): shares the in-progress pairs so recursion through unions terminates.</summary>
    private bool Compatible(AvroType reader, AvroType writer)
    {
        var trial = new AvroCompatibility(_inProgress, _depth);
        trial.Visit(reader, writer, "");
        return trial._issues.Count == 0;
    }

    /// <exception cref="RegistryException">42201 when the pair of schemas nests deeper than <see cref="SchemaNesting.MaxDepth"/>.</exception>
    private void Visit(AvroType reader, AvroType writer, string path)
    {
        SchemaNesting.Check(++_depth);
        try
        {
            VisitPair(reader, writer, path);
        }
        finally
        {
            _depth--;
        }
    }

    private void VisitPair(AvroType reader, AvroType writer, string path)
    {
        if (writer is AvroUnion wu)
        {
            if (reader is AvroUnion || wu.Branches.Count != 1)
            {
                for (var i = 0; i < wu.Branches.Count; i++)
                {
                    var branch = wu.Branches[i];
                    if (reader is AvroUnion ru)
                    {
                        if (!ru.Branches.Any(r => Compatible(r, branch)))
                            Add("MISSING_UNION_BRANCH", $"The reader union at path '{P(path)}' has no branch that can read the writer's branch {i} ({AvroParser.Describe(branch)})", AvroParser.Describe(branch));
                    }
                    else
                    {
                        Visit(reader, branch, path);
                    }
                }
                return;
            }
            writer = wu.Branches[0];
        }
        if (reader is AvroUnion readerUnion)
        {
            if (!readerUnion.Branches.Any(r => Compatible(r, writer)))
                Add("MISSING_UNION_BRANCH", $"The reader union at path '{P(path)}' has no branch that can read the writer's {AvroParser.Describe(writer)}", AvroParser.Describe(writer));
            return;
        }
        if (IsPromotion(writer.Kind, reader.Kind)) return;
        if (reader.Kind != writer.Kind)
        {
            Add("TYPE_MISMATCH", $"The type (path '{P(path)}') of a field in the reader schema is {AvroParser.Describe(reader)}, which cannot read the writer's {AvroParser.Describe(writer)}", reader.Kind);
            return;
        }
        switch (reader)
        {
            case AvroRecord r:
                var w = (AvroRecord)writer;
                if (!NamesMatch(r, w))
                {
                    Add("NAME_MISMATCH", $"The name of the record at path '{P(path + "/name")}' is {r.FullName} in the reader schema and {w.FullName} in the writer schema (add an alias to rename)", r.FullName);
                    return;
                }
                if (!_inProgress.Add((r, w))) return;
                VisitFields(r, w, path);
                _inProgress.Remove((r, w));
                return;
            case AvroEnum re:
                var we = (AvroEnum)writer;
                if (!NamesMatch(re, we))
                {
                    Add("NAME_MISMATCH", $"The name of the enum at path '{P(path + "/name")}' is {re.FullName} in the reader schema and {we.FullName} in the writer schema", re.FullName);
                    return;
                }
                var missing = we.Symbols.Where(s => !re.Symbols.Contains(s)).ToList();
                if (missing.Count > 0 && re.Default is null)
                    Add("MISSING_ENUM_SYMBOLS", $"The reader schema is missing enum symbols '[{string.Join(", ", missing)}]' at path '{P(path + "/symbols")}' in the writer schema, and its enum has no default", string.Join(", ", missing));
                return;
            case AvroFixed rfx:
                var wfx = (AvroFixed)writer;
                if (!NamesMatch(rfx, wfx))
                    Add("NAME_MISMATCH", $"The name of the fixed at path '{P(path + "/name")}' is {rfx.FullName} in the reader schema and {wfx.FullName} in the writer schema", rfx.FullName);
                else if (rfx.Size != wfx.Size)
                    Add("FIXED_SIZE_MISMATCH", $"The size of FIXED type field at path '{P(path + "/size")}' is {rfx.Size} in the reader schema and {wfx.Size} in the writer schema", $"expected: {wfx.Size}, found: {rfx.Size}");
                return;
            case AvroArray ra:
                Visit(ra.Items, ((AvroArray)writer).Items, path + "/items");
                return;
            case AvroMap rm:
                Visit(rm.Values, ((AvroMap)writer).Values, path + "/values");
                return;
        }
    }

    private void VisitFields(AvroRecord r, AvroRecord w, string path)
    {
        for (var i = 0; i < r.Fields.Count; i++)
        {
            var rf = r.Fields[i];
            var wf = w.Fields.FirstOrDefault(f => f.Name == rf.Name)
                ?? w.Fields.FirstOrDefault(f => rf.Aliases.Contains(f.Name));
            if (wf is null)
            {
                if (!rf.HasDefault)
                    Add("READER_FIELD_MISSING_DEFAULT_VALUE", $"The field '{rf.Name}' at path '{P(path + "/fields/" + i)}' in the reader schema has no default value and is missing in the writer schema", rf.Name);
            }
            else
            {
                Visit(rf.Type, wf.Type, path + "/fields/" + i + "/type");
            }
        }
    }

    private static string P(string path) => path.Length == 0 ? "/" : path;

    private void Add(string errorType, string description, string info) =>
        _issues.Add($"{{errorType:'{errorType}', description:'{description}', additionalInfo:'{info}'}}");

    /// <summary>Unqualified names equal (as Avro's Java resolver compares), or a reader alias naming the writer.</summary>
    private static bool NamesMatch(AvroNamed reader, AvroNamed writer) =>
        reader.Name == writer.Name || reader.Aliases.Contains(writer.FullName) || reader.Aliases.Any(a => a == writer.Name || a.EndsWith("." + writer.Name, StringComparison.Ordinal) && !writer.FullName.Contains('.'));

    internal static bool IsPromotion(string writer, string reader) => (writer, reader) switch
    {
        ("int", "long" or "float" or "double") => true,
        ("long", "float" or "double") => true,
        ("float", "double") => true,
        ("string", "bytes") => true,
        ("bytes", "string") => true,
        _ => false,
    };

    private sealed class PairComparer : IEqualityComparer<(AvroType, AvroType)>
    {
        public static readonly PairComparer Instance = new();

        public bool Equals((AvroType, AvroType) x, (AvroType, AvroType) y) => ReferenceEquals(x.Item1, y.Item1) && ReferenceEquals(x.Item2, y.Item2);

        public int GetHashCode((AvroType, AvroType) obj) => HashCode.Combine(
            System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj.Item1), System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(obj.Item2));
    }
}
