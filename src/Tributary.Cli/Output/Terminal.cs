using Spectre.Console;
using Spectre.Console.Rendering;

namespace Tributary.Cli.Output;

/// <summary>Everything the CLI prints for humans: tables on stdout, warnings and errors on stderr.</summary>
public static class Terminal
{
    /// <summary>Humans read stderr; its colours do not depend on whether stdout is piped.</summary>
    public static IAnsiConsole Err { get; } = AnsiConsole.Create(new AnsiConsoleSettings
    {
        Out = new AnsiConsoleOutput(System.Console.Error),
    });

    static Terminal()
    {
        // An error is one line; let the terminal wrap it rather than Spectre at a guessed width.
        Err.Profile.Width = 4096;
        // Piped tables would otherwise wrap at 80 columns.
        if (System.Console.IsOutputRedirected)
        {
            AnsiConsole.Profile.Width = 240;
        }
    }

    public static void Error(string message) => Err.MarkupLine($"[red]error:[/] {Markup.Escape(message)}");

    public static void Warn(string message) => Err.MarkupLine($"[yellow]warning:[/] {Markup.Escape(message)}");

    public static void Success(string message) => AnsiConsole.MarkupLine($"[green]✓[/] {Markup.Escape(message)}");

    public static void Info(string message) => AnsiConsole.WriteLine(message);

    /// <summary>Progress notes for humans, on stderr so they never mix with data on stdout.</summary>
    public static void Note(string message) => Err.MarkupLine($"[grey]{Markup.Escape(message)}[/]");

    /// <summary>Diagnostics shown only with TRIBUTARY_DEBUG=1.</summary>
    public static void Debug(string message)
    {
        if (DebugEnabled)
        {
            Err.WriteLine(message);
        }
    }

    public static bool DebugEnabled => Environment.GetEnvironmentVariable("TRIBUTARY_DEBUG") is "1" or "true";

    /// <summary>A borderless table like rpk's: bold headers, right-aligned columns for numbers.</summary>
    public static Table NewTable(params string[] headers)
    {
        var table = new Table().Border(TableBorder.None);
        foreach (var header in headers)
        {
            var numeric = header.StartsWith('#');
            var column = new TableColumn(new Markup($"[bold]{Markup.Escape(numeric ? header[1..] : header)}[/]")).Padding(0, 0, 3, 0);
            table.AddColumn(numeric ? column.RightAligned() : column);
        }
        return table;
    }

    /// <summary>Adds a row of plain text: cell contents are never interpreted as markup.</summary>
    public static void AddText(this Table table, params string?[] cells)
        => table.AddRow(cells.Select(c => (IRenderable)new Text(c ?? "")).ToArray());

    public static void Write(IRenderable renderable) => AnsiConsole.Write(renderable);

    public static void Heading(string text) => AnsiConsole.MarkupLine($"[bold underline]{Markup.Escape(text)}[/]");
}
