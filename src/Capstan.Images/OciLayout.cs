using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace Capstan.Images;

/// <summary>Where images are read from and written to: an OCI image layout or a registry.</summary>
public interface IImageStore
{
    /// <summary>How to name the store in messages.</summary>
    string Describe { get; }

    /// <summary>True when the store holds the blob.</summary>
    Task<bool> HasBlobAsync(string digest, CancellationToken cancellationToken);

    /// <summary>The blob's bytes as stored (the reader verifies them against the digest).</summary>
    Task<Stream> OpenBlobAsync(string digest, CancellationToken cancellationToken);

    /// <summary>Stores a blob; the store checks the bytes against <paramref name="descriptor"/>'s digest before keeping them.</summary>
    Task PutBlobAsync(Descriptor descriptor, Func<Stream> open, IProgress<long>? progress, CancellationToken cancellationToken);

    /// <summary>A manifest or index by tag or digest, with its media type and digest; null when absent.</summary>
    Task<(byte[] Bytes, string MediaType, string Digest)?> GetManifestAsync(string reference, CancellationToken cancellationToken);

    /// <summary>Stores a manifest or index under a tag (or only by digest when <paramref name="tag"/> is null).</summary>
    Task PutManifestAsync(string? tag, byte[] bytes, string mediaType, CancellationToken cancellationToken);
}

/// <summary>
/// An OCI image layout directory (<c>oci-layout://PATH</c>): <c>oci-layout</c>, <c>index.json</c> with tags as
/// <c>org.opencontainers.image.ref.name</c> annotations, and content-addressed blobs written to a temporary file,
/// checked, and renamed into place, so a blob file is either complete and correct or absent.
/// </summary>
public sealed class OciLayout : IImageStore
{
    /// <summary>The annotation that names a tag in index.json.</summary>
    public const string RefName = "org.opencontainers.image.ref.name";

    private static readonly SemaphoreSlim IndexGate = new(1, 1);

    /// <summary>Opens a layout. Nothing is written until something is stored: a missing layout reads as empty.</summary>
    public OciLayout(string path) => Path = System.IO.Path.GetFullPath(path);

    /// <summary>The layout directory.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public string Describe => "oci-layout://" + Path;

    private string IndexPath => System.IO.Path.Combine(Path, "index.json");

    /// <summary>The file of a blob.</summary>
    public string BlobPath(string digest) => System.IO.Path.Combine(Path, "blobs", "sha256", Digests.Hex(digest));

    /// <summary>True when the blob file exists.</summary>
    public bool HasBlob(string digest) => File.Exists(BlobPath(digest));

    /// <inheritdoc/>
    public Task<bool> HasBlobAsync(string digest, CancellationToken cancellationToken) => Task.FromResult(HasBlob(digest));

    /// <inheritdoc/>
    public Task<Stream> OpenBlobAsync(string digest, CancellationToken cancellationToken) =>
        HasBlob(digest) ? Task.FromResult<Stream>(File.OpenRead(BlobPath(digest))) : throw new ImageException($"{Describe} has no blob {digest}");

    /// <summary>Reads a whole blob and checks it against its digest.</summary>
    public byte[] ReadBlob(string digest)
    {
        var bytes = HasBlob(digest) ? File.ReadAllBytes(BlobPath(digest)) : throw new ImageException($"{Describe} has no blob {digest}");
        var actual = Digests.Of(bytes);
        return actual == digest ? bytes : throw new DigestMismatchException($"blob {digest} in {Describe}", digest, actual);
    }

    /// <summary>Starts writing a blob whose digest is known only at the end.</summary>
    public BlobWriter BeginBlob()
    {
        EnsureCreated();
        return new(this);
    }

    /// <summary>Stores bytes as a blob.</summary>
    public Descriptor PutBytes(byte[] bytes, string mediaType)
    {
        var digest = Digests.Of(bytes);
        EnsureCreated();
        if (!HasBlob(digest))
        {
            var temp = BlobPath(digest) + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp";
            File.WriteAllBytes(temp, bytes);
            File.Move(temp, BlobPath(digest), overwrite: true);
        }

        return new Descriptor(mediaType, digest, bytes.Length);
    }

    /// <inheritdoc/>
    public async Task PutBlobAsync(Descriptor descriptor, Func<Stream> open, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        if (HasBlob(descriptor.Digest))
        {
            return;
        }

        using var writer = BeginBlob();
        await using (var source = open())
        {
            var buffer = new byte[1 << 16];
            long total = 0;
            int read;
            while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
            {
                writer.Stream.Write(buffer, 0, read);
                total += read;
                progress?.Report(total);
            }
        }

        writer.Commit(descriptor.Digest);
    }

    /// <inheritdoc/>
    public Task<(byte[] Bytes, string MediaType, string Digest)?> GetManifestAsync(string reference, CancellationToken cancellationToken)
    {
        // By digest the media type is read from the manifest itself; by tag index.json says it.
        var byDigest = reference.StartsWith("sha256:", StringComparison.Ordinal);
        var tagged = byDigest ? null : Resolve(reference);
        var digest = byDigest ? (HasBlob(reference) ? reference : null) : tagged?.Digest;
        if (digest is null)
        {
            return Task.FromResult<(byte[], string, string)?>(null);
        }

        var bytes = ReadBlob(digest);
        return Task.FromResult<(byte[], string, string)?>((bytes, tagged?.MediaType ?? MediaTypeOf(bytes), digest));
    }

    /// <inheritdoc/>
    public async Task PutManifestAsync(string? tag, byte[] bytes, string mediaType, CancellationToken cancellationToken)
    {
        var descriptor = PutBytes(bytes, mediaType);
        if (tag is not null)
        {
            await TagAsync(tag, descriptor, cancellationToken);
        }
    }

    /// <summary>The descriptor a tag points to, or null.</summary>
    public Descriptor? Resolve(string tag)
    {
        if (!File.Exists(IndexPath))
        {
            return null;
        }

        var index = JsonNode.Parse(File.ReadAllText(IndexPath))!;
        var match = (index["manifests"] as JsonArray ?? []).LastOrDefault(m => m?["annotations"]?[RefName]?.GetValue<string>() == tag);
        return match is null ? null : Descriptor.FromJson(match) with { Annotations = null };
    }

    /// <summary>Every tag with its descriptor.</summary>
    public IReadOnlyList<(string Tag, Descriptor Descriptor)> Tags()
    {
        if (!File.Exists(IndexPath))
        {
            return [];
        }

        var index = JsonNode.Parse(File.ReadAllText(IndexPath))!;
        return [.. (index["manifests"] as JsonArray ?? [])
            .Where(m => m?["annotations"]?[RefName] is not null)
            .Select(m => (m!["annotations"]![RefName]!.GetValue<string>(), Descriptor.FromJson(m) with { Annotations = null }))];
    }

    /// <summary>Points a tag at a manifest or index (replacing what it pointed to).</summary>
    public async Task TagAsync(string tag, Descriptor descriptor, CancellationToken cancellationToken)
    {
        EnsureCreated();
        await IndexGate.WaitAsync(cancellationToken);
        try
        {
            using var lockFile = new FileStream(System.IO.Path.Combine(Path, ".index.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            var index = JsonNode.Parse(await File.ReadAllTextAsync(IndexPath, cancellationToken))!.AsObject();
            var manifests = new JsonArray([.. (index["manifests"] as JsonArray ?? [])
                .Where(m => m?["annotations"]?[RefName]?.GetValue<string>() != tag)
                .Select(m => m!.DeepClone())]);
            var tagged = descriptor.ToJson();
            tagged["annotations"] = new JsonObject { [RefName] = tag };
            manifests.Add(tagged);
            index["manifests"] = manifests;
            var temp = IndexPath + ".tmp";
            await File.WriteAllTextAsync(temp, OciJson.Text(index), cancellationToken);
            File.Move(temp, IndexPath, overwrite: true);
        }
        finally
        {
            IndexGate.Release();
        }
    }

    /// <summary>The layout's directory, <c>oci-layout</c> file and empty index, made on the first write.</summary>
    private void EnsureCreated()
    {
        Directory.CreateDirectory(System.IO.Path.Combine(Path, "blobs", "sha256"));
        var marker = System.IO.Path.Combine(Path, "oci-layout");
        if (!File.Exists(marker))
        {
            File.WriteAllText(marker, "{\"imageLayoutVersion\":\"1.0.0\"}");
        }

        if (!File.Exists(IndexPath))
        {
            File.WriteAllText(IndexPath, OciJson.Text(EmptyIndex()));
        }
    }

    internal static string MediaTypeOf(byte[] manifest) =>
        JsonNode.Parse(manifest)?["mediaType"]?.GetValue<string>() ?? MediaTypes.Manifest;

    private static JsonObject EmptyIndex() => new() { ["schemaVersion"] = 2, ["mediaType"] = MediaTypes.Index, ["manifests"] = new JsonArray() };

    /// <summary>A blob being written: hashed on the way to a temporary file, renamed into place by <see cref="Commit"/>.</summary>
    public sealed class BlobWriter : IDisposable
    {
        private readonly OciLayout _layout;
        private readonly string _temp;
        private readonly HashingStream _hashing;
        private bool _done;

        internal BlobWriter(OciLayout layout)
        {
            _layout = layout;
            _temp = System.IO.Path.Combine(layout.Path, "blobs", "sha256", ".upload-" + Guid.NewGuid().ToString("N") + ".tmp");
            _hashing = new HashingStream(new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16));
        }

        /// <summary>Where to write the bytes.</summary>
        public Stream Stream => _hashing;

        /// <summary>Closes the file and stores the blob; with <paramref name="expected"/>, refuses bytes of another digest.</summary>
        public Descriptor Commit(string? expected = null, string mediaType = "application/octet-stream")
        {
            _hashing.Dispose();
            var digest = _hashing.Digest();
            if (expected is not null && digest != expected)
            {
                File.Delete(_temp);
                _done = true;
                throw new DigestMismatchException($"blob {expected}", expected, digest);
            }

            File.Move(_temp, _layout.BlobPath(digest), overwrite: true);
            _done = true;
            return new Descriptor(mediaType, digest, _hashing.Length);
        }

        /// <inheritdoc/>
        public void Dispose()
        {
            _hashing.Dispose();
            if (!_done && File.Exists(_temp))
            {
                File.Delete(_temp);
            }
        }
    }
}

/// <summary>A write-through stream that hashes (sha256) and counts what passes; with no inner stream it only hashes.</summary>
public sealed class HashingStream(Stream? inner) : WriteOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private string? _digest;

    /// <summary>Bytes written.</summary>
    public override long Length => Written;

    private long Written { get; set; }

    /// <inheritdoc/>
    public override long Position { get => Written; set => throw new NotSupportedException(); }

    /// <summary>The digest of everything written (ends the hashing).</summary>
    public string Digest() => _digest ??= Digests.Of(_hash);

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _hash.AppendData(buffer);
        inner?.Write(buffer);
        Written += buffer.Length;
    }

    /// <inheritdoc/>
    public override void Flush() => inner?.Flush();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner?.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>A read-through stream that checks the bytes against a digest when the end is reached.</summary>
public sealed class VerifyingStream(Stream inner, string expected, string what) : ReadOnlyStream
{
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private bool _checked;

    /// <inheritdoc/>
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc/>
    public override int Read(Span<byte> buffer)
    {
        var read = inner.Read(buffer);
        Account(buffer[..read]);
        return read;
    }

    /// <inheritdoc/>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var read = await inner.ReadAsync(buffer, cancellationToken);
        Account(buffer.Span[..read]);
        return read;
    }

    /// <inheritdoc/>
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
            _hash.Dispose();
        }

        base.Dispose(disposing);
    }

    private void Account(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > 0)
        {
            _hash.AppendData(bytes);
            return;
        }

        if (!_checked)
        {
            _checked = true;
            var actual = Digests.Of(_hash);
            if (actual != expected)
            {
                throw new DigestMismatchException(what, expected, actual);
            }
        }
    }
}
