using System.Text.Json.Nodes;
using Tributary.Coordination;
using Tributary.SchemaRegistry.Avro;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>
/// Avro schema resolution, case by case, with the verdicts of the Avro specification ("Schema Resolution"):
/// can a reader with the first schema read data written with the second?
/// </summary>
public sealed class AvroCompatibilityTableTests
{
    private static readonly string[] Primitives = ["null", "boolean", "int", "long", "float", "double", "bytes", "string"];

    private static readonly HashSet<(string Writer, string Reader)> Promotions =
    [
        ("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"), ("long", "double"),
        ("float", "double"), ("string", "bytes"), ("bytes", "string"),
    ];

    private static string Rec(string name, params string[] fields) => $$"""{"type":"record","name":"{{name}}","fields":[{{string.Join(",", fields)}}]}""";

    private static string F(string name, string type, string? dflt = null, string? aliases = null) =>
        $$"""{"name":"{{name}}","type":{{type}}{{(dflt is null ? "" : ",\"default\":" + dflt)}}{{(aliases is null ? "" : ",\"aliases\":" + aliases)}}}""";

    private const string Node = """{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},{"name":"next","type":["null","Node"],"default":null}]}""";

    public static TheoryData<string, string, string, bool> Cases()
    {
        var data = new TheoryData<string, string, string, bool>();
        // every pair of primitives: equal, promotable, or not
        foreach (var reader in Primitives)
            foreach (var writer in Primitives)
                data.Add($"primitive {writer} read as {reader}", $"\"{reader}\"", $"\"{writer}\"", reader == writer || Promotions.Contains((writer, reader)));

        void Add(string name, string reader, string writer, bool expected) => data.Add(name, reader, writer, expected);

        // records
        var a = F("a", "\"int\"");
        Add("identical record", Rec("R", a), Rec("R", a), true);
        Add("reader adds a field with a default", Rec("R", a, F("b", "\"string\"", "\"x\"")), Rec("R", a), true);
        Add("reader adds a field without a default", Rec("R", a, F("b", "\"string\"")), Rec("R", a), false);
        Add("reader adds a nullable field defaulting to null", Rec("R", a, F("b", "[\"null\",\"string\"]", "null")), Rec("R", a), true);
        Add("reader drops a writer field", Rec("R", a), Rec("R", a, F("b", "\"string\"")), true);
        Add("reader drops every writer field", Rec("R"), Rec("R", a, F("b", "\"string\"")), true);
        Add("field promoted int to long", Rec("R", F("a", "\"long\"")), Rec("R", a), true);
        Add("field narrowed long to int", Rec("R", a), Rec("R", F("a", "\"long\"")), false);
        Add("field promoted int to double", Rec("R", F("a", "\"double\"")), Rec("R", a), true);
        Add("field string to bytes", Rec("R", F("a", "\"bytes\"")), Rec("R", F("a", "\"string\"")), true);
        Add("field string to int", Rec("R", F("a", "\"int\"")), Rec("R", F("a", "\"string\"")), false);
        Add("field renamed with an alias", Rec("R", F("renamed", "\"int\"", aliases: "[\"a\"]")), Rec("R", a), true);
        Add("field renamed without an alias", Rec("R", F("renamed", "\"int\"")), Rec("R", a), false);
        Add("field renamed without an alias but with a default", Rec("R", F("renamed", "\"int\"", "0")), Rec("R", a), true);
        Add("fields reordered", Rec("R", F("b", "\"string\""), a), Rec("R", a, F("b", "\"string\"")), true);
        Add("record renamed", Rec("S", a), Rec("R", a), false);
        Add("record renamed with an alias", """{"type":"record","name":"S","aliases":["R"],"fields":[{"name":"a","type":"int"}]}""", Rec("R", a), true);
        Add("record namespace changed", """{"type":"record","name":"R","namespace":"x","fields":[{"name":"a","type":"int"}]}""", """{"type":"record","name":"R","namespace":"y","fields":[{"name":"a","type":"int"}]}""", true);
        Add("record aliased by full name", """{"type":"record","name":"S","namespace":"n","aliases":["m.R"],"fields":[{"name":"a","type":"int"}]}""", """{"type":"record","name":"R","namespace":"m","fields":[{"name":"a","type":"int"}]}""", true);
        Add("record read as a map", """{"type":"map","values":"int"}""", Rec("R", a), false);
        Add("nested record gains a defaulted field", Rec("Outer", F("in", Rec("In", a, F("c", "\"long\"", "5")))), Rec("Outer", F("in", Rec("In", a))), true);
        Add("nested record gains a required field", Rec("Outer", F("in", Rec("In", a, F("c", "\"long\"")))), Rec("Outer", F("in", Rec("In", a))), false);
        Add("nested field narrowed", Rec("Outer", F("in", Rec("In", F("a", "\"float\"")))), Rec("Outer", F("in", Rec("In", F("a", "\"double\"")))), false);
        Add("nested field promoted", Rec("Outer", F("in", Rec("In", F("a", "\"double\"")))), Rec("Outer", F("in", Rec("In", F("a", "\"float\"")))), true);
        Add("record default with a record value", Rec("R", a, F("p", Rec("P", F("x", "\"int\"")), "{\"x\":1}")), Rec("R", a), true);
        Add("error type read as error", """{"type":"error","name":"E","fields":[{"name":"m","type":"string"}]}""", """{"type":"error","name":"E","fields":[{"name":"m","type":"string"}]}""", true);

        // enums
        const string E1 = """{"type":"enum","name":"Color","symbols":["RED","GREEN"]}""";
        const string E2 = """{"type":"enum","name":"Color","symbols":["RED","GREEN","BLUE"]}""";
        const string E2d = """{"type":"enum","name":"Color","symbols":["RED","GREEN","UNKNOWN"],"default":"UNKNOWN"}""";
        Add("identical enum", E1, E1, true);
        Add("reader enum gains a symbol", E2, E1, true);
        Add("reader enum lacks a writer symbol", E1, E2, false);
        Add("reader enum lacks a writer symbol but has a default", E2d, E2, true);
        Add("reader enum default covers several missing symbols", """{"type":"enum","name":"Color","symbols":["X"],"default":"X"}""", E2, true);
        Add("enum renamed", """{"type":"enum","name":"Colour","symbols":["RED","GREEN"]}""", E1, false);
        Add("enum renamed with an alias", """{"type":"enum","name":"Colour","aliases":["Color"],"symbols":["RED","GREEN"]}""", E1, true);
        Add("enum symbols reordered", """{"type":"enum","name":"Color","symbols":["GREEN","RED"]}""", E1, true);
        Add("enum read as string", "\"string\"", E1, false);
        Add("string read as enum", E1, "\"string\"", false);
        Add("enum in a record field gains a symbol", Rec("R", F("c", E2)), Rec("R", F("c", E1)), true);
        Add("enum in a record field loses a symbol", Rec("R", F("c", E1)), Rec("R", F("c", E2)), false);

        // fixed
        const string Fx16 = """{"type":"fixed","name":"Hash","size":16}""";
        Add("identical fixed", Fx16, Fx16, true);
        Add("fixed size grows", """{"type":"fixed","name":"Hash","size":32}""", Fx16, false);
        Add("fixed size shrinks", Fx16, """{"type":"fixed","name":"Hash","size":32}""", false);
        Add("fixed renamed", """{"type":"fixed","name":"Digest","size":16}""", Fx16, false);
        Add("fixed renamed with an alias", """{"type":"fixed","name":"Digest","aliases":["Hash"],"size":16}""", Fx16, true);
        Add("fixed read as bytes", "\"bytes\"", Fx16, false);
        Add("bytes read as fixed", Fx16, "\"bytes\"", false);
        Add("fixed decimal same size", """{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":10,"scale":2}""", """{"type":"fixed","name":"D","size":8,"logicalType":"decimal","precision":10,"scale":2}""", true);

        // arrays and maps
        Add("array items promoted", """{"type":"array","items":"long"}""", """{"type":"array","items":"int"}""", true);
        Add("array items narrowed", """{"type":"array","items":"int"}""", """{"type":"array","items":"long"}""", false);
        Add("array of records gains a defaulted field", $$"""{"type":"array","items":{{Rec("I", a, F("z", "\"int\"", "0"))}}}""", $$"""{"type":"array","items":{{Rec("I", a)}}}""", true);
        Add("array of records gains a required field", $$"""{"type":"array","items":{{Rec("I", a, F("z", "\"int\""))}}}""", $$"""{"type":"array","items":{{Rec("I", a)}}}""", false);
        Add("array read as map", """{"type":"map","values":"int"}""", """{"type":"array","items":"int"}""", false);
        Add("map values promoted", """{"type":"map","values":"double"}""", """{"type":"map","values":"float"}""", true);
        Add("map values narrowed", """{"type":"map","values":"float"}""", """{"type":"map","values":"double"}""", false);
        Add("map values string to bytes", """{"type":"map","values":"bytes"}""", """{"type":"map","values":"string"}""", true);
        Add("map read as array", """{"type":"array","items":"int"}""", """{"type":"map","values":"int"}""", false);
        Add("array of arrays promoted", """{"type":"array","items":{"type":"array","items":"float"}}""", """{"type":"array","items":{"type":"array","items":"int"}}""", true);
        Add("map of arrays narrowed", """{"type":"map","values":{"type":"array","items":"int"}}""", """{"type":"map","values":{"type":"array","items":"float"}}""", false);

        // unions
        Add("int read by a union with int", """["null","int"]""", "\"int\"", true);
        Add("int read by a union with long", """["null","long"]""", "\"int\"", true);
        Add("int read by a union without a match", """["null","string"]""", "\"int\"", false);
        Add("union read by a non-union covering one branch", "\"int\"", """["null","int"]""", false);
        Add("union read by a non-union covering every branch", "\"double\"", """["int","long","float"]""", true);
        Add("union branches reordered", """["string","int"]""", """["int","string"]""", true);
        Add("reader union gains a branch", """["null","int","string"]""", """["null","int"]""", true);
        Add("reader union loses a branch", """["null","int"]""", """["null","int","string"]""", false);
        Add("union branch promoted", """["null","long"]""", """["null","int"]""", true);
        Add("union branch narrowed", """["null","int"]""", """["null","long"]""", false);
        Add("single-branch union read as its branch", "\"int\"", """["int"]""", true);
        Add("branch read as a single-branch union", """["int"]""", "\"int\"", true);
        Add("union of records gains a record", $"[{Rec("A", a)},{Rec("B", a)}]", $"[{Rec("A", a)}]", true);
        Add("union of records loses a record", $"[{Rec("A", a)}]", $"[{Rec("A", a)},{Rec("B", a)}]", false);
        Add("union of records, record renamed", $"[\"null\",{Rec("C", a)}]", $"[\"null\",{Rec("A", a)}]", false);
        Add("null read by an optional", """["null","string"]""", "\"null\"", true);
        Add("optional read as null", "\"null\"", """["null","string"]""", false);
        Add("field made optional", Rec("R", F("a", "[\"null\",\"int\"]", "null")), Rec("R", a), true);
        Add("field made required", Rec("R", a), Rec("R", F("a", "[\"null\",\"int\"]", "null")), false);
        Add("union with enum and string, enum grows", $"[\"string\",{E2}]", $"[\"string\",{E1}]", true);
        Add("union branch string read as bytes", """["null","bytes"]""", """["null","string"]""", true);

        // recursive types
        Add("linked list identical", Node, Node, true);
        Add("linked list gains a defaulted field", """{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},{"name":"label","type":"string","default":""},{"name":"next","type":["null","Node"],"default":null}]}""", Node, true);
        Add("linked list gains a required field", """{"type":"record","name":"Node","fields":[{"name":"value","type":"int"},{"name":"label","type":"string"},{"name":"next","type":["null","Node"],"default":null}]}""", Node, false);
        Add("linked list value promoted", """{"type":"record","name":"Node","fields":[{"name":"value","type":"long"},{"name":"next","type":["null","Node"],"default":null}]}""", Node, true);
        Add("linked list value narrowed", Node, """{"type":"record","name":"Node","fields":[{"name":"value","type":"long"},{"name":"next","type":["null","Node"],"default":null}]}""", false);
        Add("tree with children array", """{"type":"record","name":"T","fields":[{"name":"kids","type":{"type":"array","items":"T"}},{"name":"w","type":"double","default":1}]}""", """{"type":"record","name":"T","fields":[{"name":"kids","type":{"type":"array","items":"T"}}]}""", true);
        Add("mutually recursive records", """{"type":"record","name":"A","fields":[{"name":"b","type":["null",{"type":"record","name":"B","fields":[{"name":"a","type":["null","A"]},{"name":"n","type":"long"}]}]}]}""", """{"type":"record","name":"A","fields":[{"name":"b","type":["null",{"type":"record","name":"B","fields":[{"name":"a","type":["null","A"]},{"name":"n","type":"int"}]}]}]}""", true);
        Add("named type reused twice", Rec("R", F("x", Fx16), F("y", "\"Hash\"")), Rec("R", F("x", Fx16), F("y", "\"Hash\"")), true);

        // logical types resolve on their underlying types
        Add("timestamp-millis on long", """{"type":"long","logicalType":"timestamp-millis"}""", """{"type":"long","logicalType":"timestamp-millis"}""", true);
        Add("timestamp-micros read from plain long", """{"type":"long","logicalType":"timestamp-micros"}""", "\"long\"", true);
        Add("date promoted to long", "\"long\"", """{"type":"int","logicalType":"date"}""", true);
        Add("date read from long", """{"type":"int","logicalType":"date"}""", "\"long\"", false);
        Add("uuid on string read as string", "\"string\"", """{"type":"string","logicalType":"uuid"}""", true);
        Add("decimal bytes", """{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}""", """{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}""", true);
        Add("time-millis read as time-micros (int to long)", """{"type":"long","logicalType":"time-micros"}""", """{"type":"int","logicalType":"time-millis"}""", true);
        Add("unknown logical type ignored", """{"type":"string","logicalType":"my-own"}""", "\"string\"", true);
        Add("local-timestamp-millis in a record", Rec("R", F("t", """{"type":"long","logicalType":"local-timestamp-millis"}""")), Rec("R", F("t", "\"long\"")), true);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Resolution_follows_the_specification(string name, string reader, string writer, bool compatible)
    {
        var provider = new AvroSchemaProvider();
        var issues = provider.Parse(reader, []).ReaderIssues(provider.Parse(writer, []));
        Assert.True(compatible == (issues.Count == 0), $"{name}: expected {(compatible ? "compatible" : "incompatible")}, got [{string.Join("; ", issues)}]");
        if (!compatible) Assert.All(issues, i => Assert.Contains("errorType:'", i, StringComparison.Ordinal));
    }

    public static TheoryData<string> InvalidSchemas() =>
    [
        """{"type":"recrod","name":"R","fields":[]}""",
        """{"type":"record","name":"R"}""",
        """{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":"x"}]}""",
        """{"type":"record","name":"R","fields":[{"name":"a","type":["null","int"],"default":1}]}""",
        """{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"long"}]}""",
        """{"type":"enum","name":"E","symbols":["A","A"]}""",
        """{"type":"enum","name":"E","symbols":["A"],"default":"B"}""",
        """{"type":"fixed","name":"F"}""",
        """["int","int"]""",
        """["null",["int"]]""",
        """{"type":"record","name":"1bad","fields":[]}""",
        """{"type":"record","name":"R","fields":[{"name":"a","type":"Missing"}]}""",
        "not json",
        // Issue 19 #8: invalid names anywhere are 42201, never 500.
        """{"type":"enum","name":"E","symbols":["A","1bad"]}""",
        """{"type":"enum","name":"E","symbols":["a-b"]}""",
        """{"type":"enum","name":"E","symbols":[""]}""",
        """{"type":"enum","name":"E","symbols":"A"}""",
        """{"type":"enum","name":"E","symbols":[1]}""",
        """{"type":"record","name":"R","fields":[{"name":"1a","type":"int"}]}""",
        """{"type":"record","name":"R","namespace":"a..b","fields":[]}""",
        """{"type":"record","name":"R","fields":[{"type":"int"}]}""",
        """{"type":"record","name":"R","fields":{}}""",
        """{"type":"fixed","name":"F","size":-1}""",
        """{"type":"array"}""",
        """{"type":"map","values":"Missing"}""",
        """{"type":"record","name":"R","fields":[{"name":"a","type":"int","order":"sideways"}]}""",
    ];

    [Theory]
    [MemberData(nameof(InvalidSchemas))]
    public void Invalid_schemas_are_42201(string schema)
    {
        var e = Assert.Throws<RegistryException>(() => new AvroSchemaProvider().Parse(schema, []));
        Assert.Equal(42201, e.ErrorCode);
    }

    // History v1..vN registered under NONE, then the level set and a candidate tested against the subject.
    private static readonly string A = F("a", "\"int\"");
    private static readonly string[] History2 = [Rec("R", A), Rec("R", A, F("b", "\"string\"", "\"x\""))];
    private static readonly string[] HistoryForward = [Rec("R", A, F("c", "\"int\"")), Rec("R", A, F("c", "\"int\"", "0"))];

    public static TheoryData<string, string, string, bool> LevelCases()
    {
        var data = new TheoryData<string, string, string, bool>();
        void Row(string scenario, string level, bool expected) => data.Add(scenario, level, "", expected);
        string[] levels = ["NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL", "FULL_TRANSITIVE"];
        var verdicts = new Dictionary<string, bool[]>
        {
            // NONE, BACKWARD, BACKWARD_T, FORWARD, FORWARD_T, FULL, FULL_T
            ["add-with-default"] = [true, true, true, true, true, true, true],
            ["add-without-default"] = [true, false, false, true, true, false, false],
            ["remove-required"] = [true, true, true, false, false, false, false],
            ["promote-int-long"] = [true, true, true, false, false, false, false],
            ["require-b"] = [true, true, false, true, true, true, false],
            ["drop-c"] = [true, true, true, true, false, true, false],
        };
        foreach (var (scenario, expected) in verdicts)
            for (var i = 0; i < levels.Length; i++)
                Row(scenario, levels[i], expected[i]);
        return data;
    }

    private static (string[] History, string Candidate) Scenario(string name) => name switch
    {
        "add-with-default" => (History2, Rec("R", A, F("b", "\"string\"", "\"x\""), F("c", "\"int\"", "1"))),
        "add-without-default" => (History2, Rec("R", A, F("b", "\"string\"", "\"x\""), F("c", "\"int\""))),
        "remove-required" => (History2, Rec("R", F("b", "\"string\"", "\"x\""))),
        "promote-int-long" => (History2, Rec("R", F("a", "\"long\""), F("b", "\"string\"", "\"x\""))),
        "require-b" => (History2, Rec("R", A, F("b", "\"string\""))),
        "drop-c" => (HistoryForward, Rec("R", A)),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(LevelCases))]
    public async Task Levels_check_the_latest_or_every_version(string scenario, string level, string unused, bool compatible)
    {
        _ = unused;
        var (history, candidate) = Scenario(scenario);
        await using var store = await SchemaStore.OpenAsync(new MemoryCoordinatorLog());
        await store.SetConfigAsync("s", new JsonObject { ["compatibilityLevel"] = "NONE" });
        foreach (var schema in history) await store.RegisterAsync("s", new SchemaRequest(schema, "AVRO", [], null, null), false);
        await store.SetConfigAsync("s", new JsonObject { ["compatibilityLevel"] = level });
        var issues = store.TestCompatibility("s", new SchemaRequest(candidate, "AVRO", [], null, null), null, false);
        Assert.True(compatible == (issues.Count == 0), $"{scenario} under {level}: [{string.Join("; ", issues)}]");
        if (compatible)
        {
            var registered = await store.RegisterAsync("s", new SchemaRequest(candidate, "AVRO", [], null, null), false);
            Assert.Equal(history.Length + 1, registered.Version);
        }
        else
        {
            var e = await Assert.ThrowsAsync<RegistryException>(() => store.RegisterAsync("s", new SchemaRequest(candidate, "AVRO", [], null, null), false));
            Assert.Equal(409, e.ErrorCode);
        }
    }
}
