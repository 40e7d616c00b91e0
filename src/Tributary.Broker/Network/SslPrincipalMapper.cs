using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.RegularExpressions;

namespace Tributary.Broker.Network;

/// <summary>
/// Kafka's <c>ssl.principal.mapping.rules</c>: a client certificate's subject, as an RFC 2253 distinguished name
/// ("CN=writer,OU=apps,O=Example"), is turned into a principal name by the first rule whose pattern matches it whole.
/// A rule is <c>RULE:pattern/replacement/</c> with an optional L or U after the last slash (lower or upper case the
/// result); <c>DEFAULT</c> keeps the name as it is. Rules are separated by commas (commas inside a rule's slashes are
/// part of it). No rule matching is an error, as in Kafka: the connection is refused.
/// </summary>
public sealed class SslPrincipalMapper
{
    private readonly IReadOnlyList<Rule> _rules;

    private SslPrincipalMapper(IReadOnlyList<Rule> rules) => _rules = rules;

    public static SslPrincipalMapper Parse(string value)
    {
        var rules = new List<Rule>();
        var text = value.Trim();
        var at = 0;
        while (at < text.Length)
        {
            while (at < text.Length && (text[at] == ',' || char.IsWhiteSpace(text[at]))) at++;
            if (at >= text.Length) break;
            if (string.CompareOrdinal(text, at, "DEFAULT", 0, 7) == 0)
            {
                rules.Add(new Rule(null, "", null));
                at += 7;
                continue;
            }
            if (string.CompareOrdinal(text, at, "RULE:", 0, 5) != 0) throw new ArgumentException($"ssl.principal.mapping.rules: expected RULE:pattern/replacement/[LU] or DEFAULT at '{text[at..]}'");
            at += 5;
            var pattern = ReadUntilSlash(text, ref at);
            var replacement = ReadUntilSlash(text, ref at);
            char? caseChange = at < text.Length && text[at] is 'L' or 'U' ? text[at++] : null;
            Regex regex;
            try
            {
                regex = new Regex("^(?:" + pattern + ")$", RegexOptions.CultureInvariant, TimeSpan.FromMilliseconds(100));
            }
            catch (ArgumentException e)
            {
                throw new ArgumentException($"ssl.principal.mapping.rules: '{pattern}' is not a valid pattern: {e.Message}");
            }
            rules.Add(new Rule(regex, replacement, caseChange));
        }
        return new SslPrincipalMapper(rules.Count == 0 ? [new Rule(null, "", null)] : rules);
    }

    private static string ReadUntilSlash(string text, ref int at)
    {
        var start = at;
        while (at < text.Length && text[at] != '/') at++;
        if (at >= text.Length) throw new ArgumentException($"ssl.principal.mapping.rules: a rule is missing a '/' in '{text}'");
        return text[start..at++];
    }

    /// <summary>The principal name of a distinguished name; throws when no rule matches it.</summary>
    public string Map(string distinguishedName)
    {
        foreach (var rule in _rules)
        {
            if (rule.Pattern is null) return distinguishedName;
            if (!rule.Pattern.IsMatch(distinguishedName)) continue;
            var mapped = rule.Pattern.Replace(distinguishedName, rule.Replacement);
            return rule.Case switch
            {
                'L' => mapped.ToLowerInvariant(),
                'U' => mapped.ToUpperInvariant(),
                _ => mapped,
            };
        }
        throw new ArgumentException($"no ssl.principal.mapping.rules rule matches the certificate subject '{distinguishedName}'");
    }

    /// <summary>
    /// A certificate's subject in RFC 2253 form, as Java's getName() gives it: the encoded parts last to first (most
    /// specific first, as openssl -subj /C=DE/O=Example/CN=writer encodes them), no spaces.
    /// </summary>
    public static string Rfc2253(X500DistinguishedName name)
    {
        var parts = new List<string>();
        // Reversed (the default) enumerates last encoded part first, RFC 2253's order.
        foreach (var rdn in name.EnumerateRelativeDistinguishedNames(reversed: true))
        {
            // A multi-valued part (CN=a+UID=b) is rare in client certificates; .NET's rendering of it is kept.
            if (rdn.HasMultipleElements) return name.Name;
            var oid = rdn.GetSingleElementType();
            var value = rdn.GetSingleElementValue() ?? "";
            parts.Add($"{ShortName(oid)}={Escape(value)}");
        }
        return string.Join(',', parts);
    }

    private static string ShortName(System.Security.Cryptography.Oid oid) => oid.Value switch
    {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => oid.Value ?? "",
    };

    private static string Escape(string value)
    {
        var escaped = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c is ',' or '+' or '"' or '\\' or '<' or '>' or ';' || (c == '#' && i == 0) || (c == ' ' && (i == 0 || i == value.Length - 1))) escaped.Append('\\');
            escaped.Append(c);
        }
        return escaped.ToString();
    }

    private sealed record Rule(Regex? Pattern, string Replacement, char? Case);
}
