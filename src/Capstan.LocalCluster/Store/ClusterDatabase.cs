using System.Globalization;
using System.Text.Json.Nodes;
using Capstan.Core.Security;
using Microsoft.Data.Sqlite;

namespace Capstan.LocalCluster.Store;

/// <summary>
/// The local cluster's objects on disk: SQLite (as k3s keeps its state, through kine), one row per object written in
/// the same moment as the store commits it, with its resourceVersion. The write-ahead log is written before a request
/// is answered, so a killed server restarts with every object it acknowledged; nothing rewrites the whole store.
/// </summary>
internal sealed class ClusterDatabase : IDisposable
{
    /// <summary>The database's file name in the cluster directory.</summary>
    public const string FileName = "cluster.db";

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _put;
    private readonly SqliteCommand _delete;
    private readonly SqliteCommand _version;

    private ClusterDatabase(SqliteConnection connection)
    {
        _connection = connection;
        _put = Command("INSERT INTO objects (type, ns, name, rv, body) VALUES ($type, $ns, $name, $rv, $body) ON CONFLICT (type, ns, name) DO UPDATE SET rv = excluded.rv, body = excluded.body",
            "$type", "$ns", "$name", "$rv", "$body");
        _delete = Command("DELETE FROM objects WHERE type = $type AND ns = $ns AND name = $name", "$type", "$ns", "$name");
        _version = Command("INSERT INTO meta (key, value) VALUES ('resourceVersion', $rv) ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)", "$rv");
    }

    /// <summary>Opens (creating, 0600) the database of a cluster directory.</summary>
    public static ClusterDatabase Open(string directory)
    {
        PrivateFiles.Directory(directory);
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            using (new FileStream(path, PrivateFiles.Options(FileMode.CreateNew, FileAccess.Write)))
            {
            }
        }

        PrivateFiles.Narrow(path);
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        using (var setup = connection.CreateCommand())
        {
            // Incremental auto-vacuum, so the space of expired Events goes back to the file system; a database made
            // before it is converted once (VACUUM rewrites it).
            setup.CommandText = "PRAGMA auto_vacuum";
            var vacuum = Convert.ToInt64(setup.ExecuteScalar(), CultureInfo.InvariantCulture);
            setup.CommandText = """
                PRAGMA auto_vacuum = INCREMENTAL;
                PRAGMA journal_mode = WAL;
                PRAGMA synchronous = NORMAL;
                CREATE TABLE IF NOT EXISTS objects (type TEXT NOT NULL, ns TEXT NOT NULL, name TEXT NOT NULL, rv INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (type, ns, name)) WITHOUT ROWID;
                CREATE INDEX IF NOT EXISTS objects_rv ON objects (rv);
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                """;
            setup.ExecuteNonQuery();
            if (vacuum != 2)
            {
                setup.CommandText = "VACUUM";
                setup.ExecuteNonQuery();
            }
        }

        return new ClusterDatabase(connection);
    }

    /// <summary>True when the database holds no object yet.</summary>
    public bool IsEmpty
    {
        get
        {
            using var count = _connection.CreateCommand();
            count.CommandText = "SELECT EXISTS (SELECT 1 FROM objects)";
            return Convert.ToInt64(count.ExecuteScalar(), CultureInfo.InvariantCulture) == 0;
        }
    }

    /// <summary>
    /// Every stored object but those of <paramref name="deferredType"/> (read only when asked for, by
    /// <see cref="LoadType"/>) as JSON text, and the highest resourceVersion ever handed out.
    /// </summary>
    public (List<string> Bodies, long ResourceVersion) Load(string deferredType)
    {
        var rows = new List<string>();
        long rv = 1;
        using (var read = _connection.CreateCommand())
        {
            read.CommandText = "SELECT body FROM objects WHERE type <> $type";
            read.Parameters.AddWithValue("$type", deferredType);
            using var reader = read.ExecuteReader();
            while (reader.Read())
            {
                rows.Add(reader.GetString(0));
            }
        }

        using (var max = _connection.CreateCommand())
        {
            max.CommandText = "SELECT max(rv) FROM objects";
            if (max.ExecuteScalar() is long highest)
            {
                rv = Math.Max(rv, highest);
            }

            max.CommandText = "SELECT value FROM meta WHERE key = 'resourceVersion'";
            if (max.ExecuteScalar() is long stored)
            {
                rv = Math.Max(rv, stored);
            }
        }

        return (rows, rv);
    }

    /// <summary>The stored objects of one type, as JSON text.</summary>
    public List<string> LoadType(string type)
    {
        var rows = new List<string>();
        using var read = _connection.CreateCommand();
        read.CommandText = "SELECT body FROM objects WHERE type = $type";
        read.Parameters.AddWithValue("$type", type);
        using var reader = read.ExecuteReader();
        while (reader.Read())
        {
            rows.Add(reader.GetString(0));
        }

        return rows;
    }

    /// <summary>
    /// Deletes the Events last seen before <paramref name="cutoff"/> (by lastTimestamp, else eventTime, else creation),
    /// as kube-apiserver's event TTL does, without reading them into memory; returns how many went. At most one sweep
    /// per ten minutes of the cutoff's clock.
    /// </summary>
    public int ExpireEvents(string eventType, DateTimeOffset cutoff, long resourceVersion)
    {
        // The sweep reads every Event row: a command that opens the cluster within ten minutes of the last sweep skips it.
        using (var last = _connection.CreateCommand())
        {
            last.CommandText = "SELECT value FROM meta WHERE key = 'eventsSweptUntil'";
            if (last.ExecuteScalar() is long swept && cutoff.ToUnixTimeSeconds() - swept < 600)
            {
                return 0;
            }
        }

        using var transaction = _connection.BeginTransaction();
        using var expire = _connection.CreateCommand();
        expire.Transaction = transaction;
        expire.CommandText = """
            DELETE FROM objects WHERE type = $type
              AND coalesce(json_extract(body, '$.lastTimestamp'), json_extract(body, '$.eventTime'), json_extract(body, '$.metadata.creationTimestamp')) < $cutoff
            """;
        expire.Parameters.AddWithValue("$type", eventType);
        expire.Parameters.AddWithValue("$cutoff", cutoff.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture));
        var expired = expire.ExecuteNonQuery();
        using var mark = _connection.CreateCommand();
        mark.Transaction = transaction;
        mark.CommandText = "INSERT INTO meta (key, value) VALUES ('eventsSweptUntil', $at) ON CONFLICT (key) DO UPDATE SET value = excluded.value";
        mark.Parameters.AddWithValue("$at", cutoff.ToUnixTimeSeconds());
        mark.ExecuteNonQuery();
        _version.Transaction = transaction;
        _version.Parameters["$rv"].Value = resourceVersion;
        _version.ExecuteNonQuery();
        transaction.Commit();
        _version.Transaction = null;
        return expired;
    }

    /// <summary>Gives the pages that deleted rows left free back to the file system (incremental vacuum).</summary>
    public void ReclaimSpace()
    {
        using var vacuum = _connection.CreateCommand();
        vacuum.CommandText = "PRAGMA incremental_vacuum";
        vacuum.ExecuteNonQuery();
    }

    /// <summary>Stores an object as committed (the caller holds the store's lock).</summary>
    public void Put(string type, string ns, string name, long resourceVersion, JsonObject obj)
    {
        _put.Parameters["$type"].Value = type;
        _put.Parameters["$ns"].Value = ns;
        _put.Parameters["$name"].Value = name;
        _put.Parameters["$rv"].Value = resourceVersion;
        _put.Parameters["$body"].Value = obj.ToJsonString();
        _put.ExecuteNonQuery();
    }

    /// <summary>Removes an object; the deletion's resourceVersion is kept so versions never go back after a restart.</summary>
    public void Delete(string type, string ns, string name, long resourceVersion)
    {
        using var transaction = _connection.BeginTransaction();
        _delete.Transaction = transaction;
        _version.Transaction = transaction;
        _delete.Parameters["$type"].Value = type;
        _delete.Parameters["$ns"].Value = ns;
        _delete.Parameters["$name"].Value = name;
        _delete.ExecuteNonQuery();
        _version.Parameters["$rv"].Value = resourceVersion;
        _version.ExecuteNonQuery();
        transaction.Commit();
        _delete.Transaction = null;
        _version.Transaction = null;
    }

    /// <summary>Stores many objects in one transaction (an import).</summary>
    public void PutAll(IEnumerable<(string Type, string Ns, string Name, long ResourceVersion, JsonObject Object)> objects, long resourceVersion)
    {
        using var transaction = _connection.BeginTransaction();
        _put.Transaction = transaction;
        _version.Transaction = transaction;
        foreach (var (type, ns, name, rv, obj) in objects)
        {
            Put(type, ns, name, rv, obj);
        }

        _version.Parameters["$rv"].Value = resourceVersion;
        _version.ExecuteNonQuery();
        transaction.Commit();
        _put.Transaction = null;
        _version.Transaction = null;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _put.Dispose();
        _delete.Dispose();
        _version.Dispose();
        _connection.Dispose();
    }

    private SqliteCommand Command(string text, params string[] parameters)
    {
        var command = _connection.CreateCommand();
        command.CommandText = text;
        foreach (var parameter in parameters)
        {
            command.Parameters.Add(new SqliteParameter(parameter, null));
        }

        command.Prepare();
        return command;
    }
}
