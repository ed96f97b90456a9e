using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;

namespace Capstan.Web.Tests;

/// <summary>Requests that would cost the dashboard more than they are worth: refused with a status, never a 500.</summary>
[Collection(DashboardCollection.Name)]
public sealed class RobustnessTests(DashboardFarm farm)
{
    [Fact]
    public async Task A_body_over_64_kibibytes_is_a_413_declared_or_streamed()
    {
        using var alice = farm.Client(DashboardFarm.AliceToken);
        var big = "{\"name\": \"" + new string('x', 70 * 1024) + "\"}";
        using var declared = await alice.PostAsync("/api/v1/environments", new StringContent(big, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
        Assert.Equal("the request body is larger than this server takes (64 KiB)", (await declared.Content.ReadFromJsonAsync<JsonObject>())!["error"]!.GetValue<string>());

        using var streamed = new StreamContent(new UnseekableStream(Encoding.UTF8.GetBytes(big)));
        streamed.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
        using var chunked = await alice.PostAsync("/api/v1/environments", streamed);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, chunked.StatusCode);
    }

    [Fact]
    public async Task Deploy_event_streams_are_bounded_per_client_and_share_one_view()
    {
        var streams = new List<(HttpClient Client, HttpResponseMessage Response, StreamReader Reader)>();
        try
        {
            for (var i = 0; i < DeployEventHub.MaxStreamsPerClient; i++)
            {
                var client = farm.Client();
                var response = await client.GetAsync("/api/v1/deploy/events", HttpCompletionOption.ResponseHeadersRead);
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                streams.Add((client, response, new StreamReader(await response.Content.ReadAsStreamAsync())));
            }

            // Every stream starts with the same view, computed once.
            var first = new List<string>();
            foreach (var (_, _, reader) in streams)
            {
                Assert.Equal("event: deploy", await reader.ReadLineAsync());
                first.Add((await reader.ReadLineAsync())!);
            }

            Assert.Single(first.Distinct(StringComparer.Ordinal));

            using var oneMore = farm.Client();
            using var refused = await oneMore.GetAsync("/api/v1/deploy/events", HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.TooManyRequests, refused.StatusCode);
            Assert.Equal($"this client already follows {DeployEventHub.MaxStreamsPerClient} live deploy streams; close one first", (await refused.Content.ReadFromJsonAsync<JsonObject>())!["error"]!.GetValue<string>());
        }
        finally
        {
            foreach (var (client, response, reader) in streams)
            {
                reader.Dispose();
                response.Dispose();
                client.Dispose();
            }
        }
    }

    private sealed class UnseekableStream(byte[] bytes) : MemoryStream(bytes)
    {
        public override bool CanSeek => false;
    }
}
