using Microsoft.Playwright;

namespace Capstan.Web.Tests;

/// <summary>
/// Debian's Chromium driven by Playwright (no browser is downloaded: <c>/usr/bin/chromium</c>, or
/// <c>$CAPSTAN_CHROMIUM</c>). Screenshots of the pages go to <c>artifacts/screenshots/</c> in the checkout.
/// </summary>
public sealed class Browser : IAsyncLifetime
{
    private IPlaywright? _playwright;

    public IBrowser Chromium { get; private set; } = null!;

    public static string ScreenshotDirectory { get; } = Path.Combine(DashboardFarm.CheckoutRoot, "artifacts", "screenshots");

    public async Task InitializeAsync()
    {
        var executable = Environment.GetEnvironmentVariable("CAPSTAN_CHROMIUM") ?? "/usr/bin/chromium";
        if (!File.Exists(executable))
        {
            throw new InvalidOperationException($"the browser tests need Chromium at {executable}: apt-get install chromium (./test installs it when run as root)");
        }

        _playwright = await Playwright.CreateAsync();
        Chromium = await _playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = executable,
            Headless = true,
            // Running as root (CI) needs the sandbox off; the pages are the test's own.
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        Directory.CreateDirectory(ScreenshotDirectory);
    }

    public async Task DisposeAsync()
    {
        if (Chromium is not null)
        {
            await Chromium.CloseAsync();
        }

        _playwright?.Dispose();
    }

    /// <summary>A fresh page (own cookies) on the dashboard, recording every script error and refused resource.</summary>
    public async Task<(IBrowserContext Context, IPage Page, List<string> Problems)> OpenAsync(Uri baseUrl)
    {
        var context = await Chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = baseUrl.ToString(), ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        context.SetDefaultTimeout(30_000);
        var page = await context.NewPageAsync();
        var problems = new List<string>();
        page.PageError += (_, e) => problems.Add("script error: " + e);
        page.Console += (_, m) =>
        {
            // A refused form answers 401 or 403 on purpose; anything else logged as an error (a CSP refusal) counts.
            if (m.Type == "error" && !m.Text.StartsWith("Failed to load resource: the server responded with a status of 40", StringComparison.Ordinal))
            {
                problems.Add("console: " + m.Text);
            }
        };
        return (context, page, problems);
    }

    public static Task ScreenshotAsync(IPage page, string name) =>
        page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDirectory, name + ".png"), FullPage = true });
}
