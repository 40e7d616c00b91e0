using Microsoft.AspNetCore.Http;
using Tributary.SchemaRegistry.Security;

namespace Tributary.SchemaRegistry.Tests;

/// <summary>The permission each route needs, and how role grants (with subject prefixes) answer it.</summary>
public sealed class RegistryAccessTests
{
    [Theory]
    [InlineData("GET", "/schemas/ids/1", RegistryPermission.Read, null, false)]
    [InlineData("GET", "/schemas/ids/1/schema", RegistryPermission.Read, null, false)]
    [InlineData("GET", "/subjects/a-value/versions/latest", RegistryPermission.Read, "a-value", false)]
    [InlineData("GET", "/config/a-value", RegistryPermission.Read, "a-value", false)]
    [InlineData("POST", "/subjects/a-value", RegistryPermission.Read, "a-value", false)]
    [InlineData("POST", "/subjects/a-value/versions", RegistryPermission.Write, "a-value", false)]
    [InlineData("POST", "/compatibility/subjects/a-value/versions/latest", RegistryPermission.Write, "a-value", false)]
    [InlineData("PUT", "/config/a-value", RegistryPermission.Write, "a-value", false)]
    [InlineData("PUT", "/config", RegistryPermission.Admin, null, true)]
    [InlineData("PUT", "/mode", RegistryPermission.Admin, null, true)]
    [InlineData("PUT", "/mode/a-value", RegistryPermission.Admin, "a-value", false)]
    [InlineData("DELETE", "/subjects/a-value/versions/1", RegistryPermission.Admin, "a-value", false)]
    [InlineData("DELETE", "/config", RegistryPermission.Admin, null, true)]
    [InlineData("POST", "/no/such/route", RegistryPermission.Admin, null, true)]
    public void Each_route_needs_its_permission(string method, string path, RegistryPermission permission, string? subject, bool all)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = method;
        context.Request.Path = path;
        Assert.Equal(new RegistryAccess(permission, subject, all), RegistryAccess.Of(context.Request));
    }

    [Theory]
    [InlineData("/subjects")]
    [InlineData("/schemas")]
    [InlineData("/schemas/ids/1/subjects")]
    [InlineData("/schemas/ids/1/versions")]
    [InlineData("/contexts")]
    public void Listings_need_no_permission_and_are_filtered(string path)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Path = path;
        Assert.Equal(new RegistryAccess(RegistryPermission.Read, null, false, Listing: true), RegistryAccess.Of(context.Request));
    }

    [Fact]
    public void Grants_include_lower_permissions_and_stop_at_their_prefix()
    {
        var roles = RegistryRoles.Parse("admin=admin;read=read;orders=write:orders-,read:*");
        var admin = RegistryPrincipal.Of("a", ["admin"]);
        var reader = RegistryPrincipal.Of("r", ["read"]);
        var orders = RegistryPrincipal.Of("o", ["orders"]);
        var nobody = RegistryPrincipal.Of("n", ["unknown-role"]);
        Assert.True(roles.Allows(admin, new(RegistryPermission.Write, "x", false)));
        Assert.True(roles.Allows(reader, new(RegistryPermission.Read, null, true)));
        Assert.False(roles.Allows(reader, new(RegistryPermission.Write, "x", false)));
        Assert.True(roles.Allows(orders, new(RegistryPermission.Write, "orders-value", false)));
        Assert.False(roles.Allows(orders, new(RegistryPermission.Write, "payments-value", false)));
        Assert.False(roles.Allows(orders, new(RegistryPermission.Admin, null, true)));
        Assert.True(roles.Allows(orders, new(RegistryPermission.Read, null, true)));
        Assert.False(roles.Allows(nobody, new(RegistryPermission.Read, null, false)));
        Assert.Throws<FormatException>(() => RegistryRoles.Parse("x=delete"));
        Assert.Throws<FormatException>(() => RegistryRoles.Parse("no-equals"));
    }
}
