using System.Globalization;
using System.Text;

namespace Capstan.Images;

/// <summary>
/// Writes a deterministic tar stream: ustar headers with fixed mtime, uid/gid 0, no user or group names, and a PAX
/// extended header only for a path or link target too long for ustar (holding nothing but that path, so the bytes never
/// depend on the process, the machine or the clock).
/// </summary>
internal sealed class TarBuilder(Stream output, long mtime)
{
    private const int Block = 512;
    private readonly byte[] _header = new byte[Block];
    private readonly byte[] _copy = new byte[81920];

    /// <summary>Bytes written so far.</summary>
    public long Length { get; private set; }

    public void Directory(string path) => Entry(path.EndsWith('/') ? path : path + "/", 0b111_101_101, 0, '5', null);

    public void Symlink(string path, string target) => Entry(path, 0b111_111_111, 0, '2', target);

    public void Hardlink(string path, string target) => Entry(path, 0b110_100_100, 0, '1', target);

    /// <summary>A regular file of <paramref name="size"/> bytes copied from <paramref name="content"/> (exactly that many, or an error).</summary>
    public void File(string path, bool executable, long size, Stream content)
    {
        Entry(path, executable ? 0b111_101_101 : 0b110_100_100, size, '0', null);
        var left = size;
        while (left > 0)
        {
            var read = content.Read(_copy, 0, (int)Math.Min(_copy.Length, left));
            if (read == 0)
            {
                throw new ImageException($"{path} became shorter while it was being read (expected {size} bytes)");
            }

            Write(_copy.AsSpan(0, read));
            left -= read;
        }

        Pad(size);
    }

    /// <summary>An empty regular file (whiteouts).</summary>
    public void Empty(string path) => Entry(path, 0b110_100_100, 0, '0', null);

    /// <summary>The two zero blocks that end an archive.</summary>
    public void Finish()
    {
        Array.Clear(_header);
        Write(_header);
        Write(_header);
    }

    private void Entry(string path, int mode, long size, char type, string? link)
    {
        var name = Encoding.UTF8.GetBytes(path);
        var linkBytes = link is null ? [] : Encoding.UTF8.GetBytes(link);
        var (prefix, shortName) = Split(name);
        if (shortName is null || linkBytes.Length > 100)
        {
            var records = new StringBuilder();
            if (shortName is null)
            {
                records.Append(Record("path", path));
            }

            if (linkBytes.Length > 100)
            {
                records.Append(Record("linkpath", link!));
            }

            var body = Encoding.UTF8.GetBytes(records.ToString());
            var baseName = path.TrimEnd('/');
            baseName = baseName[(baseName.LastIndexOf('/') + 1)..];
            var paxName = Encoding.UTF8.GetBytes("PaxHeaders/" + (baseName.Length > 60 ? baseName[..60] : baseName));
            Header(paxName, [], 0b110_100_100, body.Length, 'x', []);
            Write(body);
            Pad(body.Length);
            (prefix, shortName) = (Array.Empty<byte>(), Truncate(name, 100));
        }

        Header(shortName, prefix, mode, size, type, linkBytes.Length > 100 ? Truncate(linkBytes, 100) : linkBytes);
    }

    private void Header(byte[] name, byte[] prefix, int mode, long size, char type, byte[] link)
    {
        Array.Clear(_header);
        name.CopyTo(_header, 0);
        Octal(100, 8, mode);
        Octal(108, 8, 0);
        Octal(116, 8, 0);
        Octal(124, 12, size);
        Octal(136, 12, mtime);
        _header[156] = (byte)type;
        link.CopyTo(_header, 157);
        "ustar\0"u8.CopyTo(_header.AsSpan(257));
        "00"u8.CopyTo(_header.AsSpan(263));
        Octal(329, 8, 0);
        Octal(337, 8, 0);
        prefix.CopyTo(_header, 345);
        "        "u8.CopyTo(_header.AsSpan(148));
        var sum = 0;
        foreach (var b in _header)
        {
            sum += b;
        }

        var checksum = Convert.ToString(sum, 8).PadLeft(6, '0');
        Encoding.ASCII.GetBytes(checksum).CopyTo(_header, 148);
        _header[154] = 0;
        _header[155] = (byte)' ';
        Write(_header);
    }

    private void Octal(int offset, int width, long value)
    {
        var text = Convert.ToString(value, 8).PadLeft(width - 1, '0');
        if (text.Length > width - 1)
        {
            throw new ImageException($"a tar header value {value} does not fit its field");
        }

        Encoding.ASCII.GetBytes(text).CopyTo(_header, offset);
        _header[offset + width - 1] = 0;
    }

    private static (byte[] Prefix, byte[]? Name) Split(byte[] path)
    {
        if (path.Length <= 100)
        {
            return ([], path);
        }

        // ustar: prefix (≤155) + '/' + name (≤100), split at a slash.
        for (var i = Math.Min(path.Length - 1, 155); i > 0; i--)
        {
            if (path[i] == '/' && path.Length - i - 1 <= 100 && path.Length - i - 1 > 0)
            {
                return (path[..i], path[(i + 1)..]);
            }
        }

        return ([], null);
    }

    private static byte[] Truncate(byte[] bytes, int max) => bytes.Length <= max ? bytes : bytes[..max];

    private static string Record(string key, string value)
    {
        // "<length> <key>=<value>\n", where the length counts itself.
        var rest = $" {key}={value}\n";
        var restLength = Encoding.UTF8.GetByteCount(rest);
        var length = restLength + 1;
        while (length.ToString(CultureInfo.InvariantCulture).Length + restLength != length)
        {
            length++;
        }

        return length.ToString(CultureInfo.InvariantCulture) + rest;
    }

    private void Pad(long size)
    {
        var rest = (int)(size % Block);
        if (rest != 0)
        {
            Array.Clear(_header);
            Write(_header.AsSpan(0, Block - rest));
        }
    }

    private void Write(ReadOnlySpan<byte> bytes)
    {
        output.Write(bytes);
        Length += bytes.Length;
    }
}
