using System.Text.Json.Nodes;
using Capstan.LocalCluster.Store;

namespace Capstan.LocalCluster.Tests;

/// <summary>CustomResourceDefinitions in the store: across a restart, status writes, name conflicts, hostile statuses.</summary>
public sealed class DefinitionStoreTests
{
    private static readonly ResourceType Definitions = ResourceTypes.ByKind("CustomResourceDefinition")!;

    private static JsonObject Definition(string name, string plural, string kind) => Cluster.Yaml($$"""
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata:
          name: {{name}}
        spec:
          group: example.org
          scope: Namespaced
          names:
            plural: {{plural}}
            kind: {{kind}}
          versions:
          - name: v1
            served: true
            storage: true
            subresources:
              status: {}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    properties:
                      size: {type: integer}
                  status:
                    type: object
                    properties:
                      ready: {type: boolean}
        """);

    private static JsonObject Widget(string name) => Cluster.Yaml($"{{apiVersion: example.org/v1, kind: Widget, metadata: {{name: {name}}}, spec: {{size: 3}}}}");

    private static string? Condition(JsonObject crd, string type) =>
        (crd["status"]?["conditions"] as JsonArray ?? []).FirstOrDefault(c => c!["type"]!.GetValue<string>() == type)?["status"]?.GetValue<string>();

    [Fact]
    public async Task Custom_resources_are_served_again_after_a_restart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "capstan-crd-store-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            await using (var cluster = await Cluster.StartAsync(new LocalClusterOptions { DataDirectory = dir }))
            {
                await cluster.NamespaceAsync("app");
                cluster.Server.Store.Create(Definitions, null, Definition("widgets.example.org", "widgets", "Widget"));
                cluster.Server.RunControllers();
                cluster.Server.Store.Create(cluster.Server.Store.Types.Find("example.org", "v1", "widgets")!, "app", Widget("blue"));
            }

            await using var again = await Cluster.StartAsync(new LocalClusterOptions { DataDirectory = dir });
            var widgets = again.Server.Store.Types.Find("example.org", "v1", "widgets");
            Assert.NotNull(widgets);
            Assert.Equal(3, again.Server.Store.Get(widgets, "app", "blue")!["spec"]!["size"]!.GetValue<long>());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task Status_writes_are_judged_by_the_schema_and_a_garbage_definition_status_breaks_nothing()
    {
        await using var cluster = await Cluster.StartAsync();
        var store = cluster.Server.Store;
        await cluster.NamespaceAsync("app");
        store.Create(Definitions, null, Definition("widgets.example.org", "widgets", "Widget"));
        cluster.Server.RunControllers();
        var widgets = store.Types.Find("example.org", "v1", "widgets")!;
        store.Create(widgets, "app", Widget("blue"));

        var bad = Assert.Throws<ApiError>(() => store.MergePatch(widgets, "app", "blue", Cluster.Yaml("{status: {ready: yes-please}}"), statusOnly: true));
        Assert.Equal(422, bad.Code);
        Assert.Contains("status.ready: Invalid value: \"string\": status.ready in body must be of type boolean: \"string\"", bad.Message, StringComparison.Ordinal);
        store.MergePatch(widgets, "app", "blue", Cluster.Yaml("{status: {ready: true, unknown: 1}}"), statusOnly: true);
        Assert.Null(store.Get(widgets, "app", "blue")!["status"]!["unknown"]);

        // Whatever a writer puts in a definition's status, the store keeps serving; the controller puts it right.
        store.MergePatch(Definitions, null, "widgets.example.org", Cluster.Yaml("{status: {conditions: [1, x]}}"), statusOnly: true);
        Assert.Null(store.Types.Find("example.org", "v1", "widgets"));
        cluster.Server.RunControllers();
        Assert.NotNull(store.Types.Find("example.org", "v1", "widgets"));
        Assert.Equal(3, store.Get(widgets, "app", "blue")!["spec"]!["size"]!.GetValue<long>());
    }

    [Fact]
    public async Task A_kind_another_definition_holds_is_not_accepted_and_the_holder_keeps_it()
    {
        await using var cluster = await Cluster.StartAsync();
        var store = cluster.Server.Store;
        store.Create(Definitions, null, Definition("widgets.example.org", "widgets", "Widget"));
        store.Create(Definitions, null, Definition("zidgets.example.org", "zidgets", "Widget"));
        cluster.Server.RunControllers();
        cluster.Server.RunControllers();

        var holder = store.Get(Definitions, null, "widgets.example.org")!;
        var late = store.Get(Definitions, null, "zidgets.example.org")!;
        Assert.Equal("True", Condition(holder, "Established"));
        Assert.Equal("False", Condition(late, "NamesAccepted"));
        Assert.Equal("\"Widget\" is already in use", (late["status"]!["conditions"] as JsonArray)!.Single(c => c!["type"]!.GetValue<string>() == "NamesAccepted")!["message"]!.GetValue<string>());
        Assert.NotNull(store.Types.Find("example.org", "v1", "widgets"));
        Assert.Null(store.Types.Find("example.org", "v1", "zidgets"));
    }

    [Fact]
    public async Task An_autoscaler_scales_a_custom_resource_through_its_scale_paths()
    {
        await using var cluster = await Cluster.StartAsync();
        var store = cluster.Server.Store;
        await cluster.NamespaceAsync("app");
        var definition = Definition("widgets.example.org", "widgets", "Widget");
        definition["spec"]!["versions"]![0]!["subresources"]!["scale"] = new JsonObject { ["specReplicasPath"] = ".spec.size", ["statusReplicasPath"] = ".status.count" };
        definition["spec"]!["versions"]![0]!["schema"]!["openAPIV3Schema"]!["properties"]!["status"]!["properties"]!["count"] = new JsonObject { ["type"] = "integer" };
        store.Create(Definitions, null, definition);
        cluster.Server.RunControllers();
        var widgets = store.Types.Find("example.org", "v1", "widgets")!;
        store.Create(widgets, "app", Widget("blue"));
        store.MergePatch(widgets, "app", "blue", Cluster.Yaml("{status: {count: 3}}"), statusOnly: true);
        store.Create(ResourceTypes.ByKind("HorizontalPodAutoscaler")!, "app", Cluster.Yaml("""
            apiVersion: autoscaling/v2
            kind: HorizontalPodAutoscaler
            metadata: {name: blue}
            spec:
              scaleTargetRef: {apiVersion: example.org/v1, kind: Widget, name: blue}
              minReplicas: 5
              maxReplicas: 8
            """));
        cluster.Server.RunControllers();

        Assert.Equal("5", store.Get(widgets, "app", "blue")!["spec"]!["size"]!.ToJsonString());
        var status = store.Get(ResourceTypes.ByKind("HorizontalPodAutoscaler")!, "app", "blue")!["status"]!;
        Assert.Equal("3", status["currentReplicas"]!.ToJsonString());
        Assert.Equal("5", status["desiredReplicas"]!.ToJsonString());
    }
}
