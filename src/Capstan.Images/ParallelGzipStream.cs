using System.IO.Compression;

namespace Capstan.Images;

/// <summary>
/// A write-only stream that gzips on every core: the input is cut into fixed 1 MiB chunks, each compressed on its own
/// into a gzip member, and the members are written in order (RFC 1952 allows a file of several members; every gzip
/// reader, Go's included, reads them as one stream). The output depends only on the input bytes.
/// </summary>
internal sealed class ParallelGzipStream : WriteOnlyStream
{
    private const int ChunkSize = 1 << 20;

    private readonly Stream _output;
    private readonly Queue<Task<byte[]>> _pending = new();
    private readonly int _maxPending = Math.Max(2, Environment.ProcessorCount * 2);
    private byte[] _chunk = new byte[ChunkSize];
    private int _filled;
    private bool _wroteAny;

    public ParallelGzipStream(Stream output) => _output = output;

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

    /// <summary>Compresses what is left and writes every member; call once at the end.</summary>
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
        _pending.Enqueue(Task.Run(() => Compress(chunk, length)));
        _wroteAny = true;
        _chunk = new byte[ChunkSize];
        _filled = 0;
        while (_pending.Count >= _maxPending)
        {
            _output.Write(_pending.Dequeue().GetAwaiter().GetResult());
        }
    }

    private static byte[] Compress(byte[] chunk, int length)
    {
        using var buffer = new MemoryStream(length / 3 + 64);
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true))
        {
            gzip.Write(chunk, 0, length);
        }

        return buffer.ToArray();
    }
}
