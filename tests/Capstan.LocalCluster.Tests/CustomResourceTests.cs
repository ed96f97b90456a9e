using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>CustomResourceDefinitions through the real kubectl: served once established, pruned, defaulted, validated, with subresources.</summary>
public sealed class CustomResourceTests : IAsyncLifetime
{
    private const string Definition = """
        apiVersion: apiextensions.k8s.io/v1
        kind: CustomResourceDefinition
        metadata: {name: widgets.example.org}
        spec:
          group: example.org
          scope: Namespaced
          names: {plural: widgets, kind: Widget, shortNames: [wg]}
          versions:
          - name: v1
            served: true
            storage: true
            subresources:
              status: {}
              scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
            additionalPrinterColumns:
            - {name: Colour, type: string, jsonPath: .spec.colour}
            schema:
              openAPIV3Schema:
                type: object
                properties:
                  spec:
                    type: object
                    required: [size]
                    properties:
                      size: {type: integer, minimum: 1}
                      colour: {type: string, enum: [red, blue], default: red}
                      replicas: {type: integer}
                      labels: {type: object, additionalProperties: {type: string}}
                  status:
                    type: object
                    properties:
                      ready: {type: boolean}
                      replicas: {type: integer}
        """;

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "capstan-crd-" + Guid.NewGuid().ToString("N"));
    private Cluster _cluster = null!;

    private string Kubeconfig => Path.Combine(_dir, "kubeconfig");

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _cluster = await Cluster.StartAsync();
        await File.WriteAllTextAsync(Kubeconfig, _cluster.Kubeconfig());
        await _cluster.NamespaceAsync("app");
    }

    public async Task DisposeAsync()
    {
        await _cluster.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<(int Code, string Out, string Err)> KubectlAsync(params string[] args) => Kubectl.RunAsync(Kubeconfig, args);

    private async Task<(int Code, string Out, string Err)> ApplyAsync(string yaml, params string[] extra)
    {
        var file = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".yaml");
        await File.WriteAllTextAsync(file, yaml);
        return await KubectlAsync(["apply", "-f", file, .. extra]);
    }

    private async Task EstablishAsync()
    {
        var created = await ApplyAsync(Definition);
        Assert.True(created.Code == 0, created.Err);
        var established = await KubectlAsync("wait", "--for=condition=Established", "crd/widgets.example.org", "--timeout=30s");
        Assert.True(established.Code == 0, established.Err);
    }

    private async Task<JsonObject> WidgetAsync(string name)
    {
        var got = await KubectlAsync("get", "widget", name, "-n", "app", "-o", "json");
        Assert.True(got.Code == 0, got.Err);
        return JsonNode.Parse(got.Out)!.AsObject();
    }

    [Fact]
    public async Task A_definition_is_established_and_its_resource_served_pruned_and_defaulted()
    {
        var before = await KubectlAsync("get", "widgets", "-n", "app");
        Assert.NotEqual(0, before.Code);
        Assert.Contains("the server doesn't have a resource type \"widgets\"", before.Err, StringComparison.Ordinal);

        await EstablishAsync();
        var crd = JsonNode.Parse((await KubectlAsync("get", "crd", "widgets.example.org", "-o", "json")).Out)!;
        Assert.Equal("widget", crd["spec"]!["names"]!["singular"]!.GetValue<string>());
        Assert.Equal("WidgetList", crd["status"]!["acceptedNames"]!["listKind"]!.GetValue<string>());
        Assert.Equal("v1", crd["status"]!["storedVersions"]![0]!.GetValue<string>());
        var resources = await KubectlAsync("api-resources", "--api-group=example.org");
        Assert.Contains("wg", resources.Out, StringComparison.Ordinal);

        const string Widget = """
            apiVersion: example.org/v1
            kind: Widget
            metadata: {name: blue, namespace: app}
            spec: {size: 3, shape: round, labels: {a: b}}
            extra: true
            """;

        // kubectl validates strictly by default: the server refuses the fields the schema does not declare.
        var strict = await ApplyAsync(Widget);
        Assert.NotEqual(0, strict.Code);
        Assert.Contains("strict decoding error: unknown field \"extra\", unknown field \"spec.shape\"", strict.Err, StringComparison.Ordinal);

        // Without validation they are pruned, and the default fills what was not given.
        var lax = await ApplyAsync(Widget, "--validate=false");
        Assert.True(lax.Code == 0, lax.Err);
        var widget = await WidgetAsync("blue");
        Assert.Null(widget["extra"]);
        Assert.Null(widget["spec"]!["shape"]);
        Assert.Equal(3, widget["spec"]!["size"]!.GetValue<int>());
        Assert.Equal("red", widget["spec"]!["colour"]!.GetValue<string>());
        Assert.Equal("b", widget["spec"]!["labels"]!["a"]!.GetValue<string>());
        Assert.Equal(1, widget["metadata"]!["generation"]!.GetValue<int>());

        var table = await KubectlAsync("get", "wg", "-n", "app");
        Assert.Matches(@"NAME\s+COLOUR\s*\nblue\s+red", table.Out);
    }

    [Fact]
    public async Task Bad_values_are_refused_with_kube_apiservers_messages()
    {
        await EstablishAsync();
        var wrongType = await ApplyAsync("""
            apiVersion: example.org/v1
            kind: Widget
            metadata: {name: bad, namespace: app}
            spec: {size: big, colour: green}
            """);
        Assert.NotEqual(0, wrongType.Code);
        Assert.Contains("The Widget \"bad\" is invalid: ", wrongType.Err, StringComparison.Ordinal);
        Assert.Contains("spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\"", wrongType.Err, StringComparison.Ordinal);
        Assert.Contains("spec.colour: Unsupported value: \"green\": supported values: \"red\", \"blue\"", wrongType.Err, StringComparison.Ordinal);

        var missing = await ApplyAsync("""
            apiVersion: example.org/v1
            kind: Widget
            metadata: {name: bad, namespace: app}
            spec: {colour: blue}
            """);
        Assert.Contains("spec.size: Required value", missing.Err, StringComparison.Ordinal);

        var small = await ApplyAsync("""
            apiVersion: example.org/v1
            kind: Widget
            metadata: {name: bad, namespace: app}
            spec: {size: 0}
            """);
        Assert.Contains("spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1", small.Err, StringComparison.Ordinal);
        Assert.NotEqual(0, (await KubectlAsync("get", "widget", "bad", "-n", "app")).Code);

        var badDefinition = await ApplyAsync("""
            apiVersion: apiextensions.k8s.io/v1
            kind: CustomResourceDefinition
            metadata: {name: gadgets.example.org}
            spec:
              group: example.org
              scope: Namespaced
              names: {plural: gadgets, kind: Gadget}
              versions:
              - name: v1
                served: true
                storage: true
                schema:
                  openAPIV3Schema:
                    type: object
                    properties:
                      spec: {properties: {size: {type: integer}}}
            """);
        Assert.NotEqual(0, badDefinition.Code);
        Assert.Contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields", badDefinition.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Status_and_scale_are_subresources_and_the_definitions_deletion_deletes_its_resources()
    {
        await EstablishAsync();
        Assert.Equal(0, (await ApplyAsync("""
            apiVersion: example.org/v1
            kind: Widget
            metadata: {name: blue, namespace: app}
            spec: {size: 3, replicas: 1}
            """)).Code);

        var status = await KubectlAsync("patch", "widget", "blue", "-n", "app", "--subresource=status", "--type=merge", "-p", """{"status":{"ready":true,"replicas":1}}""");
        Assert.True(status.Code == 0, status.Err);
        var ignored = await KubectlAsync("patch", "widget", "blue", "-n", "app", "--type=merge", "-p", """{"status":{"ready":false}}""");
        Assert.True(ignored.Code == 0, ignored.Err);
        var widget = await WidgetAsync("blue");
        Assert.True(widget["status"]!["ready"]!.GetValue<bool>());
        Assert.Equal(1, widget["metadata"]!["generation"]!.GetValue<int>());

        var scaled = await KubectlAsync("scale", "widget", "blue", "-n", "app", "--replicas=4");
        Assert.True(scaled.Code == 0, scaled.Err);
        widget = await WidgetAsync("blue");
        Assert.Equal(4, widget["spec"]!["replicas"]!.GetValue<int>());
        Assert.Equal(2, widget["metadata"]!["generation"]!.GetValue<int>());
        var scale = JsonNode.Parse((await KubectlAsync("get", "--raw", "/apis/example.org/v1/namespaces/app/widgets/blue/scale")).Out)!;
        Assert.Equal(4, scale["spec"]!["replicas"]!.GetValue<int>());
        Assert.Equal(1, scale["status"]!["replicas"]!.GetValue<int>());

        var strategic = await KubectlAsync("patch", "widget", "blue", "-n", "app", "--type=strategic", "-p", """{"spec":{"size":5}}""");
        Assert.NotEqual(0, strategic.Code);
        Assert.Contains("application/merge-patch+json", strategic.Err, StringComparison.Ordinal);

        var deleted = await KubectlAsync("delete", "crd", "widgets.example.org", "--wait=true", "--timeout=30s");
        Assert.True(deleted.Code == 0, deleted.Err);
        Assert.NotEqual(0, (await KubectlAsync("get", "widgets", "-n", "app")).Code);
        await EstablishAsync();
        var after = await KubectlAsync("get", "widgets", "-n", "app", "-o", "name");
        Assert.True(after.Code == 0, after.Err);
        Assert.Equal(string.Empty, after.Out.Trim());
    }
}
