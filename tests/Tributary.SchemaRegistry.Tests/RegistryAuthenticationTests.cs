using System.Text;
using Microsoft.AspNetCore.Http;
using Tributary.SchemaRegistry.Security;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>The authentication step on its own: the failed-login delay, and the users file read again when it changes.</summary>
public sealed class RegistryAuthenticationTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "tributary-registry-auth-" + Guid.NewGuid().ToString("N"));

    public RegistryAuthenticationTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static RegistryAuthentication Basic(TimeSpan failureDelay) => new()
    {
        Basic = true,
        CheckPassword = (user, password) => password == "right" ? RegistryPrincipal.Of(user, []) : null,
        FailureDelay = failureDelay,
    };

    private static DefaultHttpContext Request(string password)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = "/subjects";
        context.Request.Headers.Authorization = "Basic " + Convert.ToBase64String(Encoding.UTF8.GetBytes("alice:" + password));
        context.Response.Body = new MemoryStream();
        return context;
    }

    [Fact]
    public async Task A_wrong_password_waits_for_the_delay_without_blocking_and_a_right_one_never_waits()
    {
        var delayed = Basic(TimeSpan.FromMinutes(10));
        // Returned before the delay ends: the wait holds no thread.
        using var leave = new CancellationTokenSource();
        var wrong = Request("wrong");
        wrong.RequestAborted = leave.Token;
        var refusal = delayed.InvokeAsync(wrong, _ => Task.CompletedTask);
        Assert.False(refusal.IsCompleted);

        // A request that succeeds meanwhile goes straight through.
        var reached = false;
        var accepted = delayed.InvokeAsync(Request("right"), _ =>
        {
            reached = true;
            return Task.CompletedTask;
        });
        Assert.True(accepted.IsCompletedSuccessfully);
        Assert.True(reached);

        // A client that leaves during the delay ends it, and is not answered.
        await leave.CancelAsync();
        await refusal;
        Assert.Equal(0, wrong.Response.Body.Length);

        // With no delay, the refusal is answered at once.
        var immediate = Request("wrong");
        Assert.True(Basic(TimeSpan.Zero).InvokeAsync(immediate, _ => Task.CompletedTask).IsCompletedSuccessfully);
        Assert.Equal(401, immediate.Response.StatusCode);
    }

    [Fact]
    public void A_changed_users_file_counts_from_the_next_check()
    {
        var path = Path.Combine(_dir, "users.properties");
        File.WriteAllText(path, "alice: old-secret,read\nbob: bob-secret,write\n");
        var written = DateTime.UtcNow.AddMinutes(-10);
        File.SetLastWriteTimeUtc(path, written);
        var file = new RegistryUsersFile(path);
        Assert.Equal(["read"], file.Check("alice", "old-secret", out _)!);

        // Same length, so only the modification time tells the change.
        File.WriteAllText(path, "alice: new-secret,admin\ncarol: carol-key,read\n");
        File.SetLastWriteTimeUtc(path, written.AddSeconds(1));
        Assert.Null(file.Check("alice", "old-secret", out var known));
        Assert.True(known);
        Assert.Equal(["admin"], file.Check("alice", "new-secret", out _)!);
        Assert.Null(file.Check("bob", "bob-secret", out known));
        Assert.False(known);
        Assert.Equal(["read"], file.Check("carol", "carol-key", out _)!);

        // A file that no longer parses keeps the users read before.
        var problems = new List<string>();
        var reloading = new RegistryUsersFile(path, problems.Add);
        File.WriteAllText(path, "no separator here\n");
        Assert.Equal(["admin"], reloading.Check("alice", "new-secret", out _)!);
        Assert.Equal(["admin"], reloading.Check("alice", "new-secret", out _)!);
        Assert.Single(problems);
    }
}
