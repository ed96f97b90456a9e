using Capstan.Images;

namespace Capstan.Cli;

/// <summary>Opens the image store a reference names: an OCI layout, or a registry repository with its credentials.</summary>
internal sealed class Stores : IAsyncDisposable
{
    private Stores(IImageStore store) => Store = store;

    public IImageStore Store { get; }

    public static Task<Stores> OpenAsync(ImageReference reference, CliEnvironment env, CancellationToken cancellationToken, string? mountFrom = null)
    {
        _ = cancellationToken;
        if (reference.IsLayout)
        {
            return Task.FromResult(new Stores(new OciLayout(reference.LayoutPath!)));
        }

        var credentials = RegistryCredentials.Find(reference.Registry!.Authority, env.Get);
        return Task.FromResult(new Stores(new RegistryClient(reference.Registry, reference.Repository!, credentials) { MountFrom = mountFrom }));
    }

    public ValueTask DisposeAsync()
    {
        (Store as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
