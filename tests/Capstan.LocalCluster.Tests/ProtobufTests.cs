using System.Buffers.Binary;
using System.Text.Json.Nodes;
using Capstan.LocalCluster.Schema;
using Capstan.LocalCluster.Store;
using Google.Protobuf;

namespace Capstan.LocalCluster.Tests;

/// <summary>
/// The protobuf form read and written from the schema's field numbers. What a real client makes of it is tested with
/// kubectl and helm (KubectlTests, HelmTests); these cover each special type, the zero rules and hostile bodies.
/// </summary>
public sealed class ProtobufTests
{
    private const string Pod = """
        {"apiVersion": "v1", "kind": "Pod",
         "metadata": {"name": "web-1", "namespace": "mw-web", "uid": "0c8f", "resourceVersion": "42", "generation": 1,
                      "creationTimestamp": "2026-12-07T10:00:00Z", "labels": {"app": "mw", "b": ""}, "annotations": {"z": "1", "a": "2"},
                      "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": "9a", "controller": true, "blockOwnerDeletion": false}],
                      "finalizers": ["x/y"],
                      "managedFields": [{"manager": "capstan", "operation": "Apply", "apiVersion": "v1", "time": "2026-12-07T10:00:00Z",
                                         "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}}}]},
         "spec": {"containers": [{"name": "php", "image": "mw:1", "args": ["-c", "x"],
                                  "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                                  "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
                                  "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5},
                                  "livenessProbe": {"tcpSocket": {"port": 8080}}}],
                  "volumes": [{"name": "conf", "configMap": {"name": "mw-config", "defaultMode": 420}}, {"name": "tmp", "emptyDir": {}}],
                  "terminationGracePeriodSeconds": 0, "enableServiceLinks": false, "nodeName": "node-1",
                  "securityContext": {"runAsUser": 0, "supplementalGroups": [33, 0]}},
         "status": {"phase": "Running", "podIP": "10.0.0.3",
                    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T10:00:01Z"}],
                    "containerStatuses": [{"name": "php", "ready": false, "restartCount": 0, "image": "mw:1", "imageID": "mw@sha256:ab",
                                           "state": {"running": {"startedAt": "2026-12-07T10:00:01Z"}}}]}}
        """;

    [Fact]
    public void A_pod_with_every_special_type_reads_back_as_it_was_written()
    {
        var pod = (JsonObject)JsonNode.Parse(Pod)!;
        var encoded = Protobuf.TryEncode(pod);
        Assert.NotNull(encoded);
        Assert.Equal("k8s\0"u8.ToArray(), encoded[..4]);
        var decoded = Protobuf.Decode(encoded, encoded.Length);
        Assert.True(JsonNode.DeepEquals(pod, decoded), $"wrote:\n{pod}\nread:\n{decoded}");
    }

    [Fact]
    public void A_zero_is_dropped_where_go_omits_it_and_kept_where_it_is_a_value()
    {
        var deployment = (JsonObject)JsonNode.Parse("""
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "generateName": "", "generation": 0},
             "spec": {"replicas": 0, "paused": false, "minReadySeconds": 0, "revisionHistoryLimit": 0,
                      "selector": {"matchLabels": {"app": "web"}}, "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}},
                      "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
            """)!;
        var decoded = Protobuf.Decode(Protobuf.TryEncode(deployment)!, Protobuf.TryEncode(deployment)!.Length);
        var spec = decoded["spec"]!;

        // Pointers: *int32 replicas and revisionHistoryLimit keep their 0; so does an IntOrString that was given.
        Assert.Equal(0, spec["replicas"]!.GetValue<int>());
        Assert.Equal(0, spec["revisionHistoryLimit"]!.GetValue<int>());
        Assert.Equal(0, spec["strategy"]!["rollingUpdate"]!["maxSurge"]!.GetValue<int>());
        Assert.Equal("25%", spec["strategy"]!["rollingUpdate"]!["maxUnavailable"]!.GetValue<string>());

        // omitempty scalars that Go writes anyway read as absent, as Go's JSON would print them.
        Assert.Null(spec["paused"]);
        Assert.Null(spec["minReadySeconds"]);
        Assert.Null(decoded["metadata"]!["generateName"]);
        Assert.Null(decoded["metadata"]!["generation"]);
    }

    [Fact]
    public void Daemon_and_stateful_sets_with_their_pointers_and_partition_read_back_as_written()
    {
        foreach (var text in new[]
        {
            """{"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"}, "spec": {"selector": {"matchLabels": {"app": "a"}}, "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "a", "image": "i"}]}}, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}, "revisionHistoryLimit": 10}, "status": {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 3, "numberReady": 0}}""",
            """{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {"replicas": 0, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": {"spec": {"containers": [{"name": "db", "image": "i"}]}}, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}}, "status": {"replicas": 0, "availableReplicas": 0, "currentRevision": "db-1"}}""",
        })
        {
            var obj = (JsonObject)JsonNode.Parse(text)!;
            var encoded = Protobuf.TryEncode(obj);
            Assert.NotNull(encoded);
            Assert.True(JsonNode.DeepEquals(obj, Protobuf.Decode(encoded, encoded.Length)), text);
        }
    }

    [Fact]
    public void Times_keep_seconds_and_micro_times_their_microseconds()
    {
        var ev = (JsonObject)JsonNode.Parse("""
            {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "n"}, "involvedObject": {"kind": "Pod", "name": "p"},
             "firstTimestamp": "2026-12-07T10:00:00Z", "eventTime": "2026-12-07T10:00:00.123456Z", "count": 3, "reason": "Pulled"}
            """)!;
        var encoded = Protobuf.TryEncode(ev)!;
        Assert.True(JsonNode.DeepEquals(ev, Protobuf.Decode(encoded, encoded.Length)));
    }

    [Fact]
    public void Secret_data_is_bytes_and_a_list_holds_its_items_messages_and_resource_version()
    {
        var secret = (JsonObject)JsonNode.Parse("""{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "type": "Opaque", "data": {"password": "aHVudGVyMg=="}}""")!;
        var message = Protobuf.TryMessage(ApiSchema.Default.ForKind("Secret")!, secret)!;
        Assert.Contains("hunter2"u8.ToArray(), Chunks(message));

        var list = Protobuf.EncodeList("v1", "SecretList", "77", [message, message]);
        var (typeMeta, raw) = Unwrap(list);
        Assert.Equal(("v1", "SecretList"), typeMeta);
        var fields = Fields(raw);
        Assert.Equal([1, 2, 2], fields.Select(f => f.Number));
        Assert.Equal("77", Fields(fields[0].Bytes).Single(f => f.Number == 2).Bytes.ToStringUtf8());
        Assert.Equal(message, fields[1].Bytes.ToByteArray());
    }

    [Fact]
    public void A_watch_frame_is_its_length_then_a_watch_event_holding_the_object_in_its_envelope()
    {
        var obj = Protobuf.TryEncode((JsonObject)JsonNode.Parse("""{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}""")!)!;
        var frame = Protobuf.WatchFrame("ADDED", obj);
        Assert.Equal(frame.Length - 4, BinaryPrimitives.ReadInt32BigEndian(frame));
        var fields = Fields(ByteString.CopyFrom(frame, 4, frame.Length - 4));
        Assert.Equal("ADDED", fields[0].Bytes.ToStringUtf8());
        Assert.Equal(obj, Fields(fields[1].Bytes).Single().Bytes.ToByteArray());
    }

    [Fact]
    public void Content_without_a_protobuf_form_here_is_answered_as_json()
    {
        // A volume source the schema keeps free-form has no message to write; the caller answers JSON instead.
        var pod = (JsonObject)JsonNode.Parse("""{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}], "volumes": [{"name": "v", "rbd": {"image": "x"}}]}}""")!;
        Assert.Null(Protobuf.TryEncode(pod));
        Assert.Null(Protobuf.TryEncode((JsonObject)JsonNode.Parse("""{"apiVersion": "v1", "kind": "APIGroupList"}""")!));
    }

    [Theory]
    [InlineData("application/vnd.kubernetes.protobuf,application/json", true)]
    [InlineData("application/vnd.kubernetes.protobuf", true)]
    [InlineData("application/json, application/vnd.kubernetes.protobuf", false)]
    [InlineData("application/vnd.kubernetes.protobuf;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", false)]
    [InlineData("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", false)]
    [InlineData("", false)]
    public void Protobuf_is_answered_only_when_it_is_the_first_choice_for_an_object(string accept, bool preferred) =>
        Assert.Equal(preferred, Protobuf.Preferred(accept));

    [Fact]
    public void Hostile_bodies_are_refused_with_a_status_never_an_exception()
    {
        var valid = Protobuf.TryEncode((JsonObject)JsonNode.Parse(Pod)!)!;
        var random = new Random(31);
        for (var i = 0; i < 3000; i++)
        {
            var body = (byte[])valid.Clone();
            var length = random.Next(3) == 0 ? random.Next(body.Length) : body.Length;
            for (var flips = random.Next(1, 6); flips > 0; flips--)
            {
                body[random.Next(4, body.Length)] = (byte)random.Next(256);
            }

            try
            {
                Protobuf.Decode(body, length);
            }
            catch (ApiError error)
            {
                Assert.True(error.Code is 400 or 415, error.Message);
            }
        }

        Assert.Equal(400, Assert.Throws<ApiError>(() => Protobuf.Decode("{\"kind\":1}"u8.ToArray(), 10)).Code);
        var unknownKind = Envelope("v1", "Gadget", []);
        Assert.Equal(415, Assert.Throws<ApiError>(() => Protobuf.Decode(unknownKind, unknownKind.Length)).Code);

        // A field read with a wire type its schema type cannot have (metadata as a number).
        var wrongWire = Envelope("apps/v1", "Deployment", Message(w => { w.WriteTag(1, WireFormat.WireType.Varint); w.WriteInt32(5); }).ToByteArray());
        Assert.Equal(400, Assert.Throws<ApiError>(() => Protobuf.Decode(wrongWire, wrongWire.Length)).Code);
    }

    [Fact]
    public void Every_field_of_every_schema_type_has_a_protobuf_number_except_the_envelopes_and_newer_fields()
    {
        var missing = ApiSchema.Default.Types
            .SelectMany(t => t.Fields.Values.Where(f => f.Protobuf.Count == 0 && f.Name is not ("apiVersion" or "kind")).Select(f => $"{t.ShortName}.{f.Name}"))
            .Order(StringComparer.Ordinal)
            .ToList();

        // Fields newer than the v1.32 protobuf messages: they are written as JSON only.
        Assert.Equal(["DeploymentStatus.terminatingReplicas", "HPAScalingRules.tolerance", "Lifecycle.stopSignal", "PodCondition.observedGeneration", "ReplicaSetStatus.terminatingReplicas"], missing);
        foreach (var type in ApiSchema.Default.Types)
        {
            // Building a layout refuses a number used twice in one message.
            Assert.NotNull(ProtobufLayout.Of(type));
        }
    }

    private static byte[] Envelope(string apiVersion, string kind, byte[] raw)
    {
        var typeMeta = Message(w =>
        {
            w.WriteTag(1, WireFormat.WireType.LengthDelimited);
            w.WriteString(apiVersion);
            w.WriteTag(2, WireFormat.WireType.LengthDelimited);
            w.WriteString(kind);
        });
        var unknown = Message(w =>
        {
            w.WriteTag(1, WireFormat.WireType.LengthDelimited);
            w.WriteBytes(typeMeta);
            w.WriteTag(2, WireFormat.WireType.LengthDelimited);
            w.WriteBytes(ByteString.CopyFrom(raw));
        });
        return [.. "k8s\0"u8, .. unknown.ToByteArray()];
    }

    private static ((string ApiVersion, string Kind), ByteString Raw) Unwrap(byte[] envelope)
    {
        var fields = Fields(ByteString.CopyFrom(envelope, 4, envelope.Length - 4));
        var typeMeta = Fields(fields.Single(f => f.Number == 1).Bytes);
        return ((typeMeta[0].Bytes.ToStringUtf8(), typeMeta[1].Bytes.ToStringUtf8()), fields.Single(f => f.Number == 2).Bytes);
    }

    private static ByteString Message(Action<CodedOutputStream> write)
    {
        using var buffer = new MemoryStream();
        var output = new CodedOutputStream(buffer, leaveOpen: true);
        write(output);
        output.Flush();
        return ByteString.CopyFrom(buffer.ToArray());
    }

    /// <summary>The length-delimited fields of a message (the only kind these tests look into).</summary>
    private static List<(int Number, ByteString Bytes)> Fields(ByteString message)
    {
        var input = new CodedInputStream(message.ToByteArray());
        var fields = new List<(int, ByteString)>();
        for (uint tag; (tag = input.ReadTag()) != 0;)
        {
            if (WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                fields.Add((WireFormat.GetTagFieldNumber(tag), input.ReadBytes()));
            }
            else
            {
                input.SkipLastField();
            }
        }

        return fields;
    }

    /// <summary>Every length-delimited payload inside a message, at any depth.</summary>
    private static IEnumerable<byte[]> Chunks(byte[] message)
    {
        foreach (var (_, bytes) in Fields(ByteString.CopyFrom(message)))
        {
            yield return bytes.ToByteArray();
            List<byte[]> inner;
            try
            {
                inner = [.. Chunks(bytes.ToByteArray())];
            }
            catch (InvalidProtocolBufferException)
            {
                continue;
            }

            foreach (var chunk in inner)
            {
                yield return chunk;
            }
        }
    }
}
