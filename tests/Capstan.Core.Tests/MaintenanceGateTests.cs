using Capstan.Core.Kubernetes;
using Capstan.Core.Rendering;

namespace Capstan.Core.Tests;

public sealed class MaintenanceGateTests
{
    public static TheoryData<string, bool, bool> AllCombinations()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (var primary in new[] { "eqiad", "codfw" })
        {
            foreach (var readOnly in new[] { false, true })
            {
                foreach (var maintenance in new[] { false, true })
                {
                    data.Add(primary, readOnly, maintenance);
                }
            }
        }

        return data;
    }

    /// <summary>
    /// The eight combinations of (primary DC, read-only of that DC, maintenance enabled): CronJobs are rendered in a
    /// datacenter exactly when maintenance is enabled, it is the primary and it is read-write; elsewhere the release
    /// renders none, so an apply deletes them.
    /// </summary>
    [Theory]
    [MemberData(nameof(AllCombinations))]
    public void CronJobs_render_only_in_a_read_write_primary_with_maintenance_enabled(string primary, bool primaryReadOnly, bool maintenance)
    {
        var state = FarmFixture.State(
            primary,
            eqiadReadOnly: primary == "eqiad" && primaryReadOnly ? "switchover" : null,
            codfwReadOnly: primary == "codfw" && primaryReadOnly ? "switchover" : null,
            maintenance: maintenance);
        var expectedJobs = FarmFixture.Model.FindGroup("mw-cron")!.Releases.Single(r => r.Name == "main").CronJobs.Count;
        foreach (var dc in new[] { "eqiad", "codfw" })
        {
            var release = FarmFixture.Release(dc, "mw-cron", "main", state);
            var cronJobs = release.Objects.OfType<CronJob>().ToList();
            var open = maintenance && dc == primary && !primaryReadOnly;
            Assert.Equal(open ? expectedJobs : 0, cronJobs.Count);

            // The rest of the release (its configuration) is rendered either way.
            Assert.Contains(release.Objects, o => o is ConfigMap);
        }
    }

    [Fact]
    public void CronJobs_carry_the_real_systems_defaults()
    {
        var release = FarmFixture.Release("eqiad", "mw-cron", "main");
        var jobs = release.Objects.OfType<CronJob>().ToList();
        Assert.NotEmpty(jobs);
        foreach (var job in jobs)
        {
            Assert.Equal("Replace", job.Spec.ConcurrencyPolicy);
            Assert.Equal(0, job.Spec.JobTemplate.Spec.BackoffLimit);
            Assert.Equal(1, job.Spec.SuccessfulJobsHistoryLimit);
            Assert.Equal(3, job.Spec.FailedJobsHistoryLimit);
            Assert.Equal(604800, job.Spec.JobTemplate.Spec.TtlSecondsAfterFinished);
            Assert.Equal("Never", job.Spec.JobTemplate.Spec.Template.Spec.RestartPolicy);
        }

        Assert.True(jobs.Single(j => j.Metadata.Name == "wikidata-dispatch-changes").Spec.Suspend);
        Assert.False(jobs.Single(j => j.Metadata.Name == "purge-parser-cache").Spec.Suspend);
    }

    [Fact]
    public void Rendering_the_cron_group_without_state_fails_closed()
    {
        var ex = Assert.Throws<Diagnostics.RepoValidationException>(() =>
            FarmFixture.Renderer().Render(new RenderSelection("eqiad", "mw-cron", "main"), state: null));
        Assert.Contains("needs the dynamic state", ex.Diagnostics[0].Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Incoherent_state_is_flagged()
    {
        Assert.NotEmpty(FarmFixture.State("eqiad", eqiadReadOnly: "switchover", maintenance: true).Incoherences());
        Assert.Empty(FarmFixture.State("eqiad", codfwReadOnly: "switchover", maintenance: true).Incoherences());
        Assert.Empty(FarmFixture.State("eqiad", eqiadReadOnly: "switchover", maintenance: false).Incoherences());
    }
}
