namespace Capstan.Images;

/// <summary>Opens the image store a reference names: an OCI layout, or a registry repository with its credentials.</summary>
public sealed class ImageStores : IAsyncDisposable
{
    private ImageStores(IImageStore store) => Store = store;

    public IImageStore Store { get; }

    /// <summary>Opens the store; a registry's credentials come from <paramref name="environment"/> (see <see cref="RegistryCredentials.Find"/>).</summary>
    public static ImageStores Open(ImageReference reference, Func<string, string?> environment, string? mountFrom = null)
    {
        if (reference.IsLayout)
        {
            return new ImageStores(new OciLayout(reference.LayoutPath!));
        }

        var credentials = RegistryCredentials.Find(reference.Registry!.Authority, environment);
        return new ImageStores(new RegistryClient(reference.Registry, reference.Repository!, credentials) { MountFrom = mountFrom });
    }

    public ValueTask DisposeAsync()
    {
        (Store as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
