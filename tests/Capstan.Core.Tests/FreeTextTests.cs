using Capstan.Core.Diagnostics;

namespace Capstan.Core.Tests;

public sealed class FreeTextTests
{
    [Theory]
    [InlineData("alice\u001b[31m", "U+001B at position 6")]
    [InlineData("alice\nbob  fake-row", "U+000A at position 6")]
    [InlineData("a\rb", "U+000D at position 2")]
    [InlineData("\u202Egnp.exe", "U+202E at position 1")]
    [InlineData("tab\there", "U+0009 at position 4")]
    [InlineData("c1\u009b", "U+009B at position 3")]
    public void Control_characters_are_refused_naming_the_field_character_and_position(string value, string where)
    {
        var ex = Assert.Throws<UserInputException>(() => FreeText.Check("the owner", value));
        Assert.Equal($"the owner holds the control character {where}; free text must be one line of printable characters", ex.Message);
    }

    [Theory]
    [InlineData("Alice Example <alice@example.org>")]
    [InlineData("Ünïcödé — 日本語 👩‍💻")]
    [InlineData("")]
    [InlineData(null)]
    public void Printable_text_passes(string? value)
    {
        FreeText.Check("the owner", value);
        Assert.Equal(value ?? string.Empty, FreeText.Printable(value));
    }

    [Fact]
    public void Text_from_a_store_is_shown_with_its_control_characters_escaped()
    {
        Assert.Equal("alice\\e[2J\\nbob\\r\\u202E", FreeText.Printable("alice\u001b[2J\nbob\r\u202E"));
    }
}
