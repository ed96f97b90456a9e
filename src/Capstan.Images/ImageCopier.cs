using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>What a copy moved.</summary>
public sealed record CopyResult(string Digest, string MediaType, int Blobs, int BlobsSkipped, long BytesCopied, long BytesSkipped)
{
    /// <summary>Bytes actually sent to a registry (blobs mounted from another repository send nothing); null for a layout.</summary>
    public long? BytesSent { get; init; }
}

/// <summary>
/// Copies an image (a manifest, or an index and its manifests) between stores: push and pull. A blob the target
/// already has is skipped; every blob read from the source is checked against its digest on the way (a blob whose
/// bytes do not match is an error and is never stored); manifests go last, so a tag never points at missing content.
/// </summary>
public sealed class ImageCopier(IImageStore source, IImageStore target, IProgress<(string What, long Done, long Total)>? progress = null)
{
    private int _blobs;
    private int _skipped;
    private long _copied;
    private long _skippedBytes;

    /// <summary>Copies <paramref name="reference"/> (tag or digest) of the source to <paramref name="tag"/> of the target.</summary>
    public async Task<CopyResult> CopyAsync(string reference, string? tag, CancellationToken cancellationToken)
    {
        var (bytes, mediaType, digest) = await source.GetManifestAsync(reference, cancellationToken)
            ?? throw new ImageNotFoundException($"{source.Describe} has no image {reference}");
        await CopyManifestAsync(bytes, mediaType, cancellationToken);
        await target.PutManifestAsync(tag, bytes, mediaType, cancellationToken);
        return new CopyResult(digest, mediaType, _blobs, _skipped, _copied, _skippedBytes) { BytesSent = (target as RegistryClient)?.BytesUploaded };
    }

    private async Task CopyManifestAsync(byte[] bytes, string mediaType, CancellationToken cancellationToken)
    {
        var node = JsonNode.Parse(bytes)!;
        if (MediaTypes.IsIndex(mediaType) || node["manifests"] is JsonArray)
        {
            foreach (var child in (node["manifests"] as JsonArray ?? []).Select(m => Descriptor.FromJson(m!)))
            {
                var (childBytes, childType, _) = await source.GetManifestAsync(child.Digest, cancellationToken)
                    ?? throw new ImageException($"{source.Describe} has no manifest {child.Digest} (named by the index)");
                await CopyManifestAsync(childBytes, childType, cancellationToken);
                await target.PutManifestAsync(null, childBytes, childType, cancellationToken);
            }

            return;
        }

        var blobs = new List<Descriptor> { Descriptor.FromJson(node["config"]!) };
        blobs.AddRange((node["layers"] as JsonArray ?? []).Select(l => Descriptor.FromJson(l!)));
        foreach (var blob in blobs)
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (await target.HasBlobAsync(blob.Digest, cancellationToken))
            {
                _skipped++;
                _skippedBytes += blob.Size;
                continue;
            }

            var what = blob.Annotations?.GetValueOrDefault("capstan.dev/layer") ?? blob.Digest[..19];
            if (target is OciLayout)
            {
                // Into a layout: stream straight into a checked blob file.
                await target.PutBlobAsync(blob, () => new SyncOverAsyncStream(() => source.OpenBlobAsync(blob.Digest, cancellationToken)), new Relay(progress, what, blob.Size), cancellationToken);
            }
            else
            {
                // To a registry: read the blob fully (checked) before any byte is sent, so nothing unverified is uploaded.
                var temp = Path.GetTempFileName();
                try
                {
                    await using (var input = new VerifyingStream(await source.OpenBlobAsync(blob.Digest, cancellationToken), blob.Digest, $"blob {blob.Digest} of {source.Describe}"))
                    await using (var output = File.Create(temp))
                    {
                        await input.CopyToAsync(output, cancellationToken);
                    }

                    await target.PutBlobAsync(blob, () => File.OpenRead(temp), new Relay(progress, what, blob.Size), cancellationToken);
                }
                finally
                {
                    File.Delete(temp);
                }
            }

            _blobs++;
            _copied += blob.Size;
        }
    }

    /// <summary>Reports one blob's progress under its name.</summary>
    private sealed class Relay(IProgress<(string, long, long)>? progress, string what, long total) : IProgress<long>
    {
        public void Report(long value) => progress?.Report((what, value, total));
    }

    /// <summary>Opens the source stream on first read (the layout writer reads synchronously).</summary>
    private sealed class SyncOverAsyncStream(Func<Task<Stream>> open) : ReadOnlyStream
    {
        private Stream? _inner;

        public override int Read(byte[] buffer, int offset, int count) => (_inner ??= open().GetAwaiter().GetResult()).Read(buffer, offset, count);

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            await (_inner ??= await open()).ReadAsync(buffer, cancellationToken);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                _inner?.Dispose();
            }

            base.Dispose(disposing);
        }
    }
}

/// <summary>Describes an image for <c>capstan image inspect</c>.</summary>
public static class ImageInspector
{
    /// <summary>The top descriptor, and per manifest its labels and layers.</summary>
    public static async Task<JsonObject> InspectAsync(IImageStore store, string reference, CancellationToken cancellationToken)
    {
        var (bytes, mediaType, digest) = await store.GetManifestAsync(reference, cancellationToken)
            ?? throw new ImageNotFoundException($"{store.Describe} has no image {reference}");
        var manifests = new JsonArray();
        var node = JsonNode.Parse(bytes)!;
        var children = node["manifests"] is JsonArray list
            ? list.Select(m => (Descriptor.FromJson(m!).Digest, m!["annotations"]?["capstan.dev/flavour"]?.GetValue<string>())).ToList()
            : [(digest, null)];
        foreach (var (childDigest, flavour) in children)
        {
            var (childBytes, _, _) = await store.GetManifestAsync(childDigest, cancellationToken) ?? throw new ImageException($"{store.Describe} has no manifest {childDigest}");
            var manifest = JsonNode.Parse(childBytes)!;
            var configDescriptor = Descriptor.FromJson(manifest["config"]!);
            byte[] configBytes;
            await using (var stream = new VerifyingStream(await store.OpenBlobAsync(configDescriptor.Digest, cancellationToken), configDescriptor.Digest, "image config"))
            using (var buffer = new MemoryStream())
            {
                await stream.CopyToAsync(buffer, cancellationToken);
                configBytes = buffer.ToArray();
            }

            var config = JsonNode.Parse(configBytes)!;
            manifests.Add(new JsonObject
            {
                ["digest"] = childDigest,
                ["flavour"] = flavour,
                ["config"] = configDescriptor.Digest,
                ["labels"] = config["config"]?["Labels"]?.DeepClone() ?? new JsonObject(),
                ["layers"] = new JsonArray([.. (manifest["layers"] as JsonArray ?? []).Select(l => (JsonNode)new JsonObject
                {
                    ["digest"] = l!["digest"]!.GetValue<string>(),
                    ["size"] = l["size"]!.GetValue<long>(),
                    ["mediaType"] = l["mediaType"]?.GetValue<string>(),
                    ["name"] = l["annotations"]?["capstan.dev/layer"]?.GetValue<string>() ?? string.Empty,
                })]),
            });
        }

        return new JsonObject { ["digest"] = digest, ["mediaType"] = mediaType, ["manifests"] = manifests };
    }
}
