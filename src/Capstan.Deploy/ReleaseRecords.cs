using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;
using Capstan.Core.Kubernetes;
using Capstan.Core.Planning;
using Capstan.Kubernetes;

namespace Capstan.Deploy;

/// <summary>
/// Release records: one Secret per deployed revision of a release (like Helm's), in the release's namespace, holding
/// the gzipped manifest, its hash, the image references, who deployed it, when, why and in which plan.
/// </summary>
public static class ReleaseRecords
{
    /// <summary>The label on every record.</summary>
    public const string RecordLabel = "capstan.dev/record";

    /// <summary>The label naming the release a record belongs to.</summary>
    public const string RecordOfLabel = "capstan.dev/record-of";

    /// <summary>The Secret name of a revision.</summary>
    public static string Name(string release, int revision) => $"capstan.release.{release}.v{revision.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The Secret of a record.</summary>
    public static JsonObject ToSecret(ReleaseRecord record)
    {
        var body = new JsonObject
        {
            ["revision"] = record.Revision,
            ["status"] = record.Status,
            ["manifestHash"] = record.ManifestHash,
            ["manifest"] = new JsonArray([.. record.Manifest.Select(o => o.DeepClone())]),
            ["images"] = new JsonObject(record.Images.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
            ["actor"] = record.Actor,
            ["at"] = record.At.ToString("O", CultureInfo.InvariantCulture),
            ["reason"] = record.Reason,
            ["planId"] = record.PlanId,
        };
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Optimal))
        {
            gzip.Write(Encoding.UTF8.GetBytes(body.ToJsonString()));
        }

        return new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "Secret",
            ["metadata"] = new JsonObject
            {
                ["name"] = Name(record.Id.Release, record.Revision),
                ["namespace"] = record.Id.Namespace,
                ["labels"] = new JsonObject
                {
                    [RecordLabel] = "true",
                    [RecordOfLabel] = record.Id.Release,
                    ["capstan.dev/revision"] = record.Revision.ToString(CultureInfo.InvariantCulture),
                    ["capstan.dev/status"] = record.Status,
                },
            },
            ["type"] = "capstan.dev/release.v1",
            ["data"] = new JsonObject { ["release"] = Convert.ToBase64String(buffer.ToArray()) },
        };
    }

    /// <summary>
    /// A record from its Secret. A Secret labelled as a record that cannot be read is an error naming it
    /// (<see cref="ReleaseRecordException"/>), never "no record": planning on a missing history would reinstall.
    /// </summary>
    public static ReleaseRecord FromSecret(string dc, JsonObject secret)
    {
        // A field that is missing is named, rather than met as a null on the way.
        static string Text(JsonNode? parent, string key, string where) =>
            parent?[key]?.GetValue<string>() ?? throw new InvalidDataException($"{where} has no {key}");

        try
        {
            var ns = Text(secret["metadata"], "namespace", "the Secret's metadata");
            var release = Text(secret["metadata"]?["labels"], RecordOfLabel, "the Secret's labels");
            var compressed = Convert.FromBase64String(Text(secret["data"], "release", "the Secret's data"));
            using var gzip = new GZipStream(new MemoryStream(compressed), CompressionMode.Decompress);
            using var reader = new StreamReader(gzip, Encoding.UTF8);
            var body = JsonNode.Parse(reader.ReadToEnd()) as JsonObject ?? throw new InvalidDataException("the record is not a JSON object");
            var status = secret["metadata"]?["labels"]?["capstan.dev/status"]?.GetValue<string>() ?? Text(body, "status", "the record");
            return new ReleaseRecord(
                new ReleaseId(dc, ns, release),
                (int)(Core.Kubernetes.JsonNumbers.Long(body["revision"]) ?? 0),
                status,
                Text(body, "manifestHash", "the record"),
                [.. (body["manifest"] as JsonArray ?? []).Select(o => o as JsonObject ?? throw new InvalidDataException("the record's manifest holds something that is not an object")).Select(o => (JsonObject)o.DeepClone())],
                (body["images"] as JsonObject ?? []).ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<string>() ?? string.Empty, StringComparer.Ordinal),
                Text(body, "actor", "the record"),
                DateTimeOffset.Parse(Text(body, "at", "the record"), CultureInfo.InvariantCulture),
                Text(body, "reason", "the record"),
                Text(body, "planId", "the record"));
        }
        catch (Exception ex) when (ex is FormatException or InvalidDataException or InvalidOperationException or System.Text.Json.JsonException or KeyNotFoundException)
        {
            var name = $"{secret.Kube.Namespace}/{secret["metadata"]?["name"]?.GetValue<string>()}";
            throw new ReleaseRecordException(
                $"the release record Secret {name} in {dc} cannot be read ({ex.GetType().Name}: {ex.Message}); " +
                "repair or delete it (kubectl delete secret) before deploying this release");
        }
    }

    /// <summary>Every record in a datacenter, grouped by release, newest revision first.</summary>
    public static async Task<Dictionary<ReleaseId, List<ReleaseRecord>>> ListAsync(IClusterClient client, string dc, string? ns, CancellationToken cancellationToken, bool deployedOnly = false)
    {
        var selector = $"{RecordLabel}=true" + (deployedOnly ? ",capstan.dev/status=deployed" : string.Empty);
        var secrets = await client.ListAsync("v1", "Secret", ns, selector, cancellationToken);
        return secrets.Items
            .Select(s => FromSecret(dc, s))
            .GroupBy(r => r.Id)
            .ToDictionary(g => g.Key, g => g.OrderByDescending(r => r.Revision).ToList());
    }

    /// <summary>
    /// The records of some namespaces, one list per namespace at once (what a deployer with namespace-scoped
    /// permissions may read), never across the cluster.
    /// </summary>
    public static async Task<Dictionary<ReleaseId, List<ReleaseRecord>>> ListAsync(IClusterClient client, string dc, IEnumerable<string> namespaces, CancellationToken cancellationToken, bool deployedOnly = false)
    {
        var lists = await Task.WhenAll(namespaces.Distinct(StringComparer.Ordinal).Select(ns => ListAsync(client, dc, ns, cancellationToken, deployedOnly)));
        return lists.SelectMany(l => l).ToDictionary(kv => kv.Key, kv => kv.Value);
    }

    /// <summary>The images a manifest runs, by container name.</summary>
    public static Dictionary<string, string> Images(IEnumerable<JsonObject> manifest)
    {
        var images = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var obj in manifest)
        {
            var pod = obj["kind"]?.GetValue<string>() switch
            {
                "Deployment" or "Job" => obj["spec"]?["template"]?["spec"],
                "CronJob" => obj["spec"]?["jobTemplate"]?["spec"]?["template"]?["spec"],
                _ => null,
            };
            foreach (var container in (pod?["containers"] as JsonArray ?? []).Concat(pod?["initContainers"] as JsonArray ?? []))
            {
                images[container!["name"]!.GetValue<string>()] = container["image"]!.GetValue<string>();
            }
        }

        return images;
    }
}

/// <summary>A release record Secret that cannot be read (corrupt or of an unknown format).</summary>
public sealed class ReleaseRecordException(string message) : CapstanException(RefusalKind.Failure, message);
