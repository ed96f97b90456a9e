using Capstan.Core.Kubernetes;

namespace Capstan.Core.Tests;

/// <summary>Quantities read back as kube-apiserver writes them (apimachinery's canonical form).</summary>
public sealed class QuantityTests
{
    [Theory]
    [InlineData("1024Mi", "1Gi")]
    [InlineData("0.5", "500m")]
    [InlineData("1.5Gi", "1536Mi")]
    [InlineData("1.5Ki", "1536")]
    [InlineData("0.5Gi", "512Mi")]
    [InlineData("100Ki", "100Ki")]
    [InlineData("2048Ki", "2Mi")]
    [InlineData("1000m", "1")]
    [InlineData("1500m", "1500m")]
    [InlineData("1.5", "1500m")]
    [InlineData("1000", "1k")]
    [InlineData("1500", "1500")]
    [InlineData("1024", "1024")]
    [InlineData("0.1", "100m")]
    [InlineData("1000M", "1G")]
    [InlineData("5274Mi", "5274Mi")]
    [InlineData("1e3", "1e3")]
    [InlineData("1000e0", "1e3")]
    [InlineData("12e-3", "12e-3")]
    [InlineData("0", "0")]
    [InlineData("0Mi", "0")]
    [InlineData("+1", "1")]
    [InlineData("-1024Mi", "-1Gi")]
    [InlineData("0.0000000001", "1n")]
    [InlineData("1.", "1")]
    public void A_quantity_reads_back_canonical(string written, string canonical)
    {
        Assert.Equal(canonical, Quantity.Canonicalize(written));
        Assert.Equal(canonical, Quantity.Canonicalize(canonical));
    }

    [Theory]
    [InlineData("1x")]
    [InlineData("abc")]
    [InlineData("")]
    [InlineData("1.2.3")]
    [InlineData("Mi")]
    [InlineData("1 Gi")]
    [InlineData(".")]
    public void Text_that_is_not_a_quantity_is_refused(string text) => Assert.Null(Quantity.Canonicalize(text));
}
