using System.Net;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.LocalCluster.Tests;

/// <summary>
/// Bodies a writer in one namespace could send to crash or bloat the server, and writes a real API server answers
/// differently: each gets kube-apiserver's refusal and the server keeps serving.
/// </summary>
public sealed class HostileBodyTests
{
    private const string ConfigMaps = "/api/v1/namespaces/app/configmaps";

    [Fact]
    public async Task A_body_nested_twenty_thousand_deep_is_a_400_and_the_server_keeps_serving()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var deep = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\ndata: " + string.Concat(Enumerable.Repeat("[", 20_000)) + string.Concat(Enumerable.Repeat("]", 20_000)) + "\n";

        var (code, status) = await SendAsync(cluster, HttpMethod.Post, ConfigMaps, deep, "application/yaml");

        Assert.Equal(400, code);
        Assert.Contains("nested more than 64 deep", status["message"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertServingAsync(cluster);
    }

    [Fact]
    public async Task An_alias_bomb_is_a_400_and_the_server_keeps_serving()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var bomb = new StringBuilder("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bomb}\nx0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (var i = 1; i < 10; i++)
        {
            bomb.Append($"x{i}: &a{i} [{string.Join(", ", Enumerable.Repeat($"*a{i - 1}", 9))}]\n");
        }

        Assert.True(bomb.Length < 1000);
        var (code, status) = await SendAsync(cluster, HttpMethod.Post, ConfigMaps, bomb.ToString(), "application/yaml");

        Assert.Equal(400, code);
        Assert.Contains("alias bomb", status["message"]!.GetValue<string>(), StringComparison.Ordinal);
        await AssertServingAsync(cluster);
    }

    [Fact]
    public async Task A_body_over_three_mebibytes_is_a_413_declared_or_streamed()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var body = ConfigMap("big", new string('x', (3 * 1024 * 1024) + 10));

        var (declared, status) = await SendAsync(cluster, HttpMethod.Post, ConfigMaps, body, "application/json");
        Assert.Equal(413, declared);
        Assert.Equal("Request entity too large: limit is 3145728", status["message"]!.GetValue<string>());

        using var http = cluster.Http();
        using var streamed = new StreamContent(new NoLengthStream(Encoding.UTF8.GetBytes(body)));
        streamed.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var response = await http.PostAsync(ConfigMaps, streamed);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await AssertServingAsync(cluster);
    }

    [Theory]
    [InlineData("ConfigMap", "configmaps", "ConfigMap \"big\" is invalid: []: Too long: must have at most 1048576 bytes")]
    [InlineData("Secret", "secrets", "Secret \"big\" is invalid: data: Too long: must have at most 1048576 bytes")]
    public async Task A_config_map_or_secret_over_one_mebibyte_is_refused_with_the_servers_words(string kind, string plural, string message)
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        var bytes = new string('x', (1024 * 1024) + 1);
        var value = kind == "Secret" ? Convert.ToBase64String(Encoding.ASCII.GetBytes(bytes)) : bytes;
        var body = new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = kind,
            ["metadata"] = new JsonObject { ["name"] = "big" },
            ["data"] = new JsonObject { ["k"] = value },
        };

        var (code, status) = await SendAsync(cluster, HttpMethod.Post, $"/api/v1/namespaces/app/{plural}", body.ToJsonString(), "application/json");

        Assert.Equal(422, code);
        Assert.Equal(message, status["message"]!.GetValue<string>());

        // Exactly one mebibyte is allowed.
        body["data"]!["k"] = kind == "Secret" ? Convert.ToBase64String(Encoding.ASCII.GetBytes(bytes[1..])) : bytes[1..];
        Assert.Equal(201, (await SendAsync(cluster, HttpMethod.Post, $"/api/v1/namespaces/app/{plural}", body.ToJsonString(), "application/json")).Code);
    }

    [Fact]
    public async Task A_put_whose_name_differs_from_the_url_is_a_400_and_changes_nothing()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.ApplyAsync(ConfigMap("one", "1"));
        await cluster.ApplyAsync(ConfigMap("two", "2"));

        var (code, status) = await SendAsync(cluster, HttpMethod.Put, ConfigMaps + "/one", ConfigMap("two", "changed"), "application/json");

        Assert.Equal(400, code);
        Assert.Equal("the name of the object (two) does not match the name on the URL (one)", status["message"]!.GetValue<string>());
        Assert.Equal("1", (await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "one"), default))!["data"]!["k"]!.GetValue<string>());
        Assert.Equal("2", (await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "two"), default))!["data"]!["k"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_server_side_apply_whose_namespace_differs_from_the_url_is_a_400_and_writes_nothing()
    {
        await using var cluster = await Cluster.StartAsync();
        await cluster.NamespaceAsync("app");
        await cluster.NamespaceAsync("other");
        var body = JsonNode.Parse(ConfigMap("one", "1"))!.AsObject();
        body["metadata"]!["namespace"] = "other";

        var (code, status) = await cluster.PatchAsync(ConfigMaps + "/one?fieldManager=test", "application/apply-patch+yaml", body.ToJsonString());

        Assert.Equal(400, code);
        Assert.Equal("the namespace of the object (other) does not match the namespace on the request (app)", status["message"]!.GetValue<string>());
        Assert.Null(await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "one"), default));
        Assert.Null(await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "other", "one"), default));
    }

    private static string ConfigMap(string name, string value) =>
        new JsonObject
        {
            ["apiVersion"] = "v1",
            ["kind"] = "ConfigMap",
            ["metadata"] = new JsonObject { ["name"] = name, ["namespace"] = "app" },
            ["data"] = new JsonObject { ["k"] = value },
        }.ToJsonString();

    private static async Task<(int Code, JsonObject Body)> SendAsync(Cluster cluster, HttpMethod method, string path, string body, string contentType)
    {
        using var http = cluster.Http();
        using var request = new HttpRequestMessage(method, path) { Content = new StringContent(body, Encoding.UTF8) };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(contentType);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, JsonNode.Parse(text)!.AsObject());
    }

    private static async Task AssertServingAsync(Cluster cluster)
    {
        await cluster.ApplyAsync(ConfigMap("after", "ok"));
        Assert.NotNull(await cluster.Client.GetAsync(new ObjectRef("v1", "ConfigMap", "app", "after"), default));
    }

    /// <summary>A body sent chunked, with no Content-Length for the server to refuse up front.</summary>
    private sealed class NoLengthStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
