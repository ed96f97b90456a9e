using Capstan.Core.Kubernetes;

namespace Capstan.Core.Tests;

public sealed class KubeNamesTests
{
    [Theory]
    [InlineData("mw-web", true)]
    [InlineData("a", true)]
    [InlineData("Mw-web", false)]
    [InlineData("mw_web", false)]
    [InlineData("-mw", false)]
    [InlineData("mw-", false)]
    [InlineData("mw.web", false)]
    [InlineData("", false)]
    public void Dns_labels(string name, bool valid) => Assert.Equal(valid, KubeNames.CheckDnsLabel(name) is null);

    [Fact]
    public void Labels_longer_than_63_are_refused()
    {
        Assert.Null(KubeNames.CheckDnsLabel(new string('a', 63)));
        Assert.NotNull(KubeNames.CheckDnsLabel(new string('a', 64)));
    }

    [Theory]
    [InlineData("mw-web.eqiad.main", true)]
    [InlineData("mw-web..main", false)]
    [InlineData("mw-web.eqiad.Main", false)]
    public void Dns_subdomains(string name, bool valid) => Assert.Equal(valid, KubeNames.CheckDnsSubdomain(name) is null);

    [Fact]
    public void Service_environment_prefix_is_upper_case_with_underscores() =>
        Assert.Equal("STATSD_EXPORTER_PROMETHEUS", KubeNames.ServiceEnvPrefix("statsd-exporter-prometheus"));
}
