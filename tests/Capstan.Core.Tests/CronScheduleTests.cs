using Capstan.Core.Config;

namespace Capstan.Core.Tests;

public sealed class CronScheduleTests
{
    [Theory]
    [InlineData("* * * * *")]
    [InlineData("0 1 * * *")]
    [InlineData("*/5 * * * *")]
    [InlineData("5 */3 * * *")]
    [InlineData("0 0 1,15 * MON-FRI")]
    [InlineData("30 2 * JAN,jul 0")]
    [InlineData("0 0 * * 7")]
    [InlineData("@daily")]
    [InlineData("@hourly")]
    public void Valid_schedules_parse(string text) => Assert.Null(CronSchedule.Check(text));

    [Theory]
    [InlineData("61 * * * *")]
    [InlineData("* 24 * * *")]
    [InlineData("* * 0 * *")]
    [InlineData("* * * 13 *")]
    [InlineData("* * * * 8")]
    [InlineData("* * * *")]
    [InlineData("*/0 * * * *")]
    [InlineData("5-1 * * * *")]
    [InlineData("@sometimes")]
    [InlineData("a b c d e")]
    public void Invalid_schedules_are_refused(string text) => Assert.NotNull(CronSchedule.Check(text));

    [Fact]
    public void Next_fire_time_follows_the_fields()
    {
        Assert.True(CronSchedule.TryParse("5 */3 * * *", out var schedule, out _));
        var t = new DateTimeOffset(2026, 11, 21, 3, 5, 0, TimeSpan.Zero);
        Assert.Equal(new DateTimeOffset(2026, 11, 21, 6, 5, 0, TimeSpan.Zero), schedule.NextAfter(t));
        Assert.True(CronSchedule.TryParse("0 0 * * SUN", out var sunday, out _));
        Assert.Equal(DayOfWeek.Sunday, sunday.NextAfter(t).DayOfWeek);
    }
}
