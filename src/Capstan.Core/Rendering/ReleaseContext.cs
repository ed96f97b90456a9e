using Capstan.Core.Config;
using Capstan.Core.State;
using Capstan.Core.Values;

namespace Capstan.Core.Rendering;

/// <summary>Everything a release renderer needs: the release, where it goes, its layered values and the dynamic state.</summary>
public sealed record ReleaseContext(
    FarmModel Farm,
    string Datacenter,
    ServerGroup Group,
    ReleaseSpec Release,
    MediaWikiValues Values,
    DynamicState? State)
{
    /// <summary>The test environment rendered for, or null for production.</summary>
    public Environments.EnvironmentOverlay? Environment { get; init; }

    /// <summary>The farm's project name.</summary>
    public string Project => Farm.Project;

    /// <summary>The group's namespace.</summary>
    public string Namespace => Group.Namespace;

    /// <summary>The port the TLS proxy terminates on (web and async groups).</summary>
    public int TlsPort => Group.TlsPort ?? 4443;

    /// <summary>The prefix of the release's object and container names: <c>mediawiki-main</c>.</summary>
    public string Prefix => "mediawiki-" + Release.Name;
}
