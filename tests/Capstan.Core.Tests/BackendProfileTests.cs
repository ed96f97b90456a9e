using Capstan.Core.Diagnostics;
using Capstan.Core.Environments;

namespace Capstan.Core.Tests;

/// <summary>The backends file and the classes' backend profiles: read with file:line errors, and resolved per environment.</summary>
public sealed class BackendProfileTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("capstan-backends-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private Config.FarmModel Load(string testEnvironments, string backends)
    {
        Directory.CreateDirectory(Path.Combine(_root, "groups"));
        File.WriteAllText(Path.Combine(_root, "groups", "mw-web.yaml"), "tls-port: 4450\nreleases:\n  main: {replicas: 2}\n");
        File.WriteAllText(Path.Combine(_root, "backends.yaml"), backends);
        File.WriteAllText(Path.Combine(_root, "capstan.yaml"), $"project: tiny\ndatacenters:\n  eqiad: {{cluster: \"local://eqiad\"}}\nbackends: backends.yaml\n{testEnvironments}");
        return Config.RepoLoader.Load(new Config.DirectoryRepoFiles(_root)).Model;
    }

    private const string Backends = """
        production:
          memcached: {kind: memcached, route-prefix: "/{dc}/mw", servers: {eqiad: [10.64.0.80:11211]}}
          database: {kind: database, hosts: [db1001.eqiad.wmnet]}
          sessionstore: {kind: mesh, port: 6006, upstream: sessionstore.discovery.wmnet:8081}
        shared:
          staging:
            sessionstore: {kind: mesh, port: 6006, upstream: sessionstore.staging.example:8081}
        """;

    [Fact]
    public void A_class_gets_production_read_only_only_by_naming_the_backend_and_the_rest_stay_its_own_or_shared()
    {
        var model = Load("""
            test-environments:
              backends: {default: own, mesh: shared:staging}
              classes:
                demo:
                  backends: {database: production-readonly}
            """, Backends);
        var policy = model.EnvironmentPolicy;
        var demo = EnvironmentBackends.Resolve(model.Backends!, policy.BackendsOf(policy.Class("demo")), "show");
        Assert.Equal(["memcached own", "database production-readonly", "sessionstore shared:staging"], demo.Items.Select(i => $"{i.Production.Name} {i.Source}"));
        Assert.Equal("database", Assert.Single(demo.FromProduction).Production.Name);

        // What the environment may not reach: production's endpoints of every backend it does not share explicitly.
        var forbidden = demo.ForbiddenEndpoints(["eqiad"], ["mw-web"]).Select(e => e.Text).ToList();
        Assert.Contains("10.64.0.80:11211", forbidden);
        Assert.Contains("/eqiad/mw", forbidden);
        Assert.Contains("sessionstore.discovery.wmnet", forbidden);
        Assert.DoesNotContain("db1001.eqiad.wmnet", forbidden);

        var ci = EnvironmentBackends.Resolve(model.Backends!, policy.BackendsOf(policy.Class("ci")), "run1");
        Assert.Empty(ci.FromProduction);
        Assert.Equal("memcached.run1--backends.svc.cluster.local:11211", ((Yaml.ValueList)ci.Items[0].Effective.Fields["servers"]!).Items.Cast<Yaml.ValueScalar>().Single().Text);
    }

    [Theory]
    [InlineData("test-environments:\n  backends: production-readonly\n", "capstan.yaml:6:13: error: test-environments.backends: production-readonly is allowed only for a named backend of a class")]
    [InlineData("test-environments:\n  classes:\n    demo: {backends: {default: production-readonly}}\n", "capstan.yaml:7:32: error: test-environments.classes.demo.backends.default: production-readonly is allowed only for a named backend of a class")]
    [InlineData("test-environments:\n  backends: {cache: own}\n", "capstan.yaml:6:13: error: test-environments.backends: backend 'cache' is not one of production's (known: memcached, database, sessionstore;")]
    [InlineData("test-environments:\n  backends: shared:qa\n", "capstan.yaml:6:13: error: test-environments.backends: there is no shared backend set 'qa' (known: staging)")]
    [InlineData("test-environments:\n  backends: elsewhere\n", "capstan.yaml:6:13: error: test-environments.backends must be own, shared:SET or production-readonly, not \"elsewhere\"")]
    public void A_bad_profile_is_an_error_at_its_line(string testEnvironments, string expected)
    {
        var refused = Assert.Throws<RepoValidationException>(() => Load(testEnvironments, Backends));
        Assert.Contains(refused.Diagnostics, d => d.ToString().StartsWith(expected, StringComparison.Ordinal));
    }

    [Fact]
    public void A_bad_backends_file_is_an_error_at_its_line()
    {
        var refused = Assert.Throws<RepoValidationException>(() => Load(string.Empty, """
            production:
              memcached: {kind: memcache, servers: [a:1]}
              redis: {kind: redis}
            shared:
              staging:
                mail: {kind: mail, relay: mail.staging.example}
            """));
        var errors = refused.Diagnostics.Select(d => d.ToString()).ToList();
        Assert.Contains(errors, e => e.StartsWith("backends.yaml:2:", StringComparison.Ordinal) && e.Contains("production.memcached.kind must be one of memcached, redis, mesh, kafka, udp2log, mail, database", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("backends.yaml:3:", StringComparison.Ordinal) && e.Contains("server", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("backends.yaml:6:", StringComparison.Ordinal) && e.Contains("production has no backend 'mail'", StringComparison.Ordinal));
    }
}
