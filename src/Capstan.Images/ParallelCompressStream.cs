using System.IO.Compression;

namespace Capstan.Images;

/// <summary>
/// A write-only stream that compresses on every core: the input is cut into fixed 1 MiB chunks, each compressed on its
/// own, and the results are written in order. For gzip each chunk is a member (RFC 1952 allows a file of several
/// members; every gzip reader, Go's included, reads them as one stream); for zstd each chunk is a frame (RFC 8878:
/// concatenated frames decode as the concatenation). The output depends only on the input bytes.
/// </summary>
internal sealed class ParallelCompressStream : WriteOnlyStream
{
    private const int ChunkSize = 1 << 20;

    /// <summary>zstd's level: 1, its fastest regular level (still smaller than gzip's fastest).</summary>
    private const int ZstdLevel = 1;

    private readonly Stream _output;
    private readonly bool _zstd;
    private readonly Queue<Task<byte[]>> _pending = new();
    private readonly int _maxPending = Math.Max(2, Environment.ProcessorCount * 2);
    private byte[] _chunk = new byte[ChunkSize];
    private int _filled;
    private bool _wroteAny;

    /// <summary>Compresses into <paramref name="output"/> with <paramref name="compression"/> (<c>gzip</c> or <c>zstd</c>).</summary>
    public ParallelCompressStream(Stream output, string compression)
    {
        _output = output;
        _zstd = compression switch
        {
            "gzip" => false,
            "zstd" => true,
            _ => throw new ArgumentException($"unknown compression '{compression}'", nameof(compression)),
        };
    }

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            var take = Math.Min(buffer.Length, ChunkSize - _filled);
            buffer[..take].CopyTo(_chunk.AsSpan(_filled));
            _filled += take;
            buffer = buffer[take..];
            if (_filled == ChunkSize)
            {
                Dispatch();
            }
        }
    }

    /// <summary>Compresses what is left and writes every member or frame; call once at the end.</summary>
    public void Complete()
    {
        if (_filled > 0 || !_wroteAny)
        {
            Dispatch();
        }

        while (_pending.Count > 0)
        {
            _output.Write(_pending.Dequeue().GetAwaiter().GetResult());
        }
    }

    private void Dispatch()
    {
        var chunk = _chunk;
        var length = _filled;
        var zstd = _zstd;
        _pending.Enqueue(Task.Run(() => zstd ? Zstd(chunk, length) : Gzip(chunk, length)));
        _wroteAny = true;
        _chunk = new byte[ChunkSize];
        _filled = 0;
        while (_pending.Count >= _maxPending)
        {
            _output.Write(_pending.Dequeue().GetAwaiter().GetResult());
        }
    }

    private static byte[] Gzip(byte[] chunk, int length)
    {
        using var buffer = new MemoryStream(length / 3 + 64);
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(chunk, 0, length);
        }

        return buffer.ToArray();
    }

    private static byte[] Zstd(byte[] chunk, int length)
    {
        using var compressor = new ZstdSharp.Compressor(ZstdLevel);
        return compressor.Wrap(chunk.AsSpan(0, length)).ToArray();
    }
}
