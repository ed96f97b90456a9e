namespace Capstan.Testing;

/// <summary>Where the tests find helm: <c>$CAPSTAN_TEST_HELM</c>, else what <c>bench/get-helm.sh</c> fetched (./test runs it).</summary>
public static class Helm
{
    public static string Path()
    {
        if (Environment.GetEnvironmentVariable("CAPSTAN_TEST_HELM") is { Length: > 0 } given)
        {
            return given;
        }

        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(System.IO.Path.Combine(dir.FullName, "Capstan.slnx")))
        {
            dir = dir.Parent;
        }

        var fetched = System.IO.Path.Combine(dir?.FullName ?? ".", "bench", ".tools", "helm", "helm");
        return File.Exists(fetched)
            ? fetched
            : throw new InvalidOperationException($"helm is not here ({fetched}): run bench/get-helm.sh (./test does), or set CAPSTAN_TEST_HELM");
    }
}
