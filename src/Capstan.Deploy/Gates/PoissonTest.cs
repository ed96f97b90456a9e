namespace Capstan.Deploy.Gates;

/// <summary>
/// The one-sided Poisson test of a relative check: is a release's error count more than its baseline's error ratio
/// (times a tolerance) predicts for the release's requests, beyond chance?
/// </summary>
/// <remarks>
/// Errors among a release's requests are rare events of a large count: Poisson, with a mean of requests × the baseline's
/// ratio × the tolerance under the hypothesis that the release is as good as allowed. The upper tail P(X ≥ errors) is
/// exact for the small counts a canary sees in a soak, where a normal approximation (a two-proportion z-test) overstates
/// significance; a rank test over time windows (Mann-Whitney, as Kayenta does) needs many windows per soak, which a
/// soak of a few scrapes does not have. The baseline (production, ten times the canary's traffic or more) is taken as
/// known, with one error added so that a baseline without errors still predicts some.
/// </remarks>
public static class PoissonTest
{
    /// <summary>The baseline's error ratio as the test uses it: (errors + 1) / (requests + 1).</summary>
    public static double BaselineRatio(double errors, double requests) => (Math.Max(0, errors) + 1) / (Math.Max(0, requests) + 1);

    /// <summary>P(X ≥ <paramref name="k"/>) for X ~ Poisson(<paramref name="mean"/>).</summary>
    public static double UpperTail(double k, double mean)
    {
        var n = (long)Math.Ceiling(k);
        if (n <= 0)
        {
            return 1;
        }

        if (mean <= 0)
        {
            return 0;
        }

        if (n <= mean)
        {
            // The tail is large: 1 - P(X < n), summed in log space.
            var below = 0.0;
            for (long i = 0; i < n; i++)
            {
                below += Math.Exp(LogTerm(i, mean));
            }

            return Math.Clamp(1 - below, 0, 1);
        }

        // The tail is small: sum its terms from n while they matter (they shrink faster than geometrically).
        var sum = 0.0;
        for (var i = n; ; i++)
        {
            var term = Math.Exp(LogTerm(i, mean));
            sum += term;
            if (term < sum * 1e-15 || i - n > 100_000)
            {
                break;
            }
        }

        return Math.Clamp(sum, 0, 1);
    }

    private static double LogTerm(long i, double mean) => -mean + (i * Math.Log(mean)) - LogFactorial(i);

    /// <summary>ln(n!): exact below 30, Stirling's series above.</summary>
    public static double LogFactorial(long n)
    {
        if (n < 30)
        {
            var sum = 0.0;
            for (var i = 2; i <= n; i++)
            {
                sum += Math.Log(i);
            }

            return sum;
        }

        double x = n;
        return (x * Math.Log(x)) - x + (0.5 * Math.Log(2 * Math.PI * x)) + (1 / (12 * x)) - (1 / (360 * x * x * x));
    }
}
