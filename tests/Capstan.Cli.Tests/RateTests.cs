using Capstan.Cli.Commands;
using Capstan.Core.Diagnostics;

namespace Capstan.Cli.Tests;

/// <summary>The rates of <c>local serve --pull-bandwidth</c> and <c>--registry-egress</c>.</summary>
public sealed class RateTests
{
    [Theory]
    [InlineData("125MB/s", 125_000_000)]
    [InlineData("1Gbit/s", 125_000_000)]
    [InlineData("10Gbps", 1_250_000_000)]
    [InlineData("1GiB/s", 1_073_741_824)]
    [InlineData("500kB/s", 500_000)]
    [InlineData("1048576", 1_048_576)]
    public void Rates_read_as_written(string text, long bytesPerSecond) => Assert.Equal(bytesPerSecond, LocalCommand.Rate(text, "--pull-bandwidth"));

    [Theory]
    [InlineData("fast")]
    [InlineData("0MB/s")]
    [InlineData("-5MB/s")]
    [InlineData("10 parsecs")]
    public void Anything_else_is_a_clear_error(string text) =>
        Assert.Equal($"--pull-bandwidth '{text}' is not a rate (such as 125MB/s, 1Gbit/s or 10Gbps)", Assert.Throws<UserInputException>(() => LocalCommand.Rate(text, "--pull-bandwidth")).Message);
}
