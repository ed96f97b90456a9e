using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using Capstan.Core.Diagnostics;

namespace Capstan.Deploy.Gates;

/// <summary>One series of a query's answer: its labels and its value (or its values over a range).</summary>
public sealed record PromSeries(IReadOnlyDictionary<string, string> Labels, double Value, IReadOnlyList<(DateTimeOffset At, double Value)> Points)
{
    /// <summary>The labels as PromQL writes them: <c>{code="500", pod="mw-web…"}</c> (without <c>__name__</c>).</summary>
    public string LabelText => "{" + string.Join(", ", Labels.Where(l => l.Key != "__name__").OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}=\"{l.Value}\"")) + "}";
}

/// <summary>Prometheus did not answer, or refused the query.</summary>
public sealed class PrometheusException(string message, bool badQuery) : CapstanException(badQuery ? RefusalKind.UserError : RefusalKind.Failure, message)
{
    /// <summary>True when the expression itself is wrong (HTTP 400, <c>bad_data</c>): asking again will not help.</summary>
    public bool BadQuery { get; } = badQuery;
}

/// <summary>A client of Prometheus's HTTP API: instant queries (<c>/api/v1/query</c>) and range queries (<c>/api/v1/query_range</c>).</summary>
public sealed class PrometheusClient(HttpClient http, Uri baseUrl)
{
    /// <summary>The most points Prometheus returns for one series of a range query.</summary>
    public const int MaxPointsPerQuery = 11_000;

    /// <summary>Where the server is.</summary>
    public Uri BaseUrl { get; } = baseUrl;

    /// <summary>Evaluates an expression at a time: one series per element of the vector (or the scalar).</summary>
    public async Task<IReadOnlyList<PromSeries>> QueryAsync(string expression, DateTimeOffset at, CancellationToken cancellationToken)
    {
        var data = await GetAsync("api/v1/query", [("query", expression), ("time", Seconds(at))], cancellationToken);
        var type = data["resultType"]?.GetValue<string>();
        if (type == "scalar")
        {
            return [new PromSeries(new Dictionary<string, string>(), ValueOf(data["result"]), [])];
        }

        return [.. (data["result"] as JsonArray ?? []).Select(item => new PromSeries(LabelsOf(item), ValueOf(item?["value"]), []))];
    }

    /// <summary>
    /// Evaluates an expression every <paramref name="step"/> from <paramref name="start"/> to <paramref name="end"/>, in
    /// as many requests as the server's limit of points per series needs.
    /// </summary>
    public async Task<IReadOnlyList<PromSeries>> QueryRangeAsync(string expression, DateTimeOffset start, DateTimeOffset end, TimeSpan step, CancellationToken cancellationToken)
    {
        var points = new Dictionary<string, (Dictionary<string, string> Labels, List<(DateTimeOffset, double)> Points)>(StringComparer.Ordinal);
        var chunk = step * (MaxPointsPerQuery - 1);
        for (var from = start; from <= end; from += chunk + step)
        {
            var to = from + chunk < end ? from + chunk : end;
            var data = await GetAsync(
                "api/v1/query_range",
                [("query", expression), ("start", Seconds(from)), ("end", Seconds(to)), ("step", step.TotalSeconds.ToString(CultureInfo.InvariantCulture))],
                cancellationToken);
            foreach (var item in data["result"] as JsonArray ?? [])
            {
                var labels = LabelsOf(item);
                var key = string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));
                if (!points.TryGetValue(key, out var series))
                {
                    points[key] = series = (labels, []);
                }

                foreach (var value in item?["values"] as JsonArray ?? [])
                {
                    series.Points.Add((DateTimeOffset.FromUnixTimeMilliseconds((long)(value![0]!.GetValue<double>() * 1000)), ValueOf(value)));
                }
            }
        }

        return [.. points.Values.Select(s => new PromSeries(s.Labels, s.Points.Count > 0 ? s.Points[^1].Item2 : double.NaN, s.Points))];
    }

    private async Task<JsonObject> GetAsync(string path, IEnumerable<(string Key, string Value)> query, CancellationToken cancellationToken)
    {
        var url = new Uri(BaseUrl, path + "?" + string.Join("&", query.Select(q => $"{q.Key}={Uri.EscapeDataString(q.Value)}")));
        HttpResponseMessage response;
        try
        {
            response = await http.GetAsync(url, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            throw new PrometheusException($"Prometheus at {BaseUrl} does not answer: {ex.Message}", badQuery: false);
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new PrometheusException($"Prometheus at {BaseUrl} did not answer in time", badQuery: false);
        }

        using (response)
        {
            JsonObject? body;
            try
            {
                body = await response.Content.ReadFromJsonAsync<JsonObject>(cancellationToken);
            }
            catch (JsonException)
            {
                throw new PrometheusException($"Prometheus at {BaseUrl} answered HTTP {(int)response.StatusCode} without a JSON body: is it Prometheus?", badQuery: false);
            }

            if (body?["status"]?.GetValue<string>() != "success")
            {
                var error = body?["error"]?.GetValue<string>() ?? $"HTTP {(int)response.StatusCode}";
                var type = body?["errorType"]?.GetValue<string>();
                throw new PrometheusException($"Prometheus refused the query: {error}", badQuery: type == "bad_data" || response.StatusCode == System.Net.HttpStatusCode.BadRequest);
            }

            return body["data"] as JsonObject ?? [];
        }
    }

    private static string Seconds(DateTimeOffset at) => (at.ToUnixTimeMilliseconds() / 1000.0).ToString("0.###", CultureInfo.InvariantCulture);

    private static Dictionary<string, string> LabelsOf(JsonNode? item) =>
        (item?["metric"] as JsonObject ?? []).ToDictionary(kv => kv.Key, kv => kv.Value?.GetValue<string>() ?? string.Empty, StringComparer.Ordinal);

    private static double ValueOf(JsonNode? pair) =>
        pair is JsonArray { Count: 2 } array && array[1]?.GetValue<string>() is { } text
            ? text switch
            {
                "NaN" => double.NaN,
                "+Inf" => double.PositiveInfinity,
                "-Inf" => double.NegativeInfinity,
                _ => double.Parse(text, CultureInfo.InvariantCulture),
            }
            : double.NaN;
}
