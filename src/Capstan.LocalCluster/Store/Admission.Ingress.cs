using System.Net;
using System.Text.Json.Nodes;
using Capstan.Core.Kubernetes;

namespace Capstan.LocalCluster.Store;

/// <summary>An Ingress's validation, in kube-apiserver's words (pkg/apis/networking/validation).</summary>
internal static partial class Admission
{
    private static readonly string[] PathTypes = ["Exact", "ImplementationSpecific", "Prefix"];

    private static void ValidateIngress(JsonObject spec, List<(string Field, string Message)> causes)
    {
        var rules = spec["rules"] as JsonArray ?? [];
        if (spec["defaultBackend"] is null && rules.Count == 0)
        {
            causes.Add(("spec", "Invalid value: \"null\": either `defaultBackend` or `rules` must be specified"));
        }

        if (spec["defaultBackend"] is JsonObject fallback)
        {
            ValidateIngressBackend(fallback, "spec.defaultBackend", causes);
        }

        for (var i = 0; i < rules.Count; i++)
        {
            var at = $"spec.rules[{i}]";
            if (rules[i]?["host"]?.GetValue<string>() is { Length: > 0 } host)
            {
                if (IPAddress.TryParse(host, out _))
                {
                    causes.Add(($"{at}.host", $"Invalid value: \"{host}\": must be a DNS name, not an IP address"));
                }
                else if (KubeNames.CheckDnsSubdomain(host.StartsWith("*.", StringComparison.Ordinal) ? host[2..] : host) is not null)
                {
                    causes.Add(($"{at}.host", $"Invalid value: \"{host}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
                }
            }

            var paths = rules[i]?["http"]?["paths"] as JsonArray ?? [];
            for (var j = 0; j < paths.Count; j++)
            {
                var pathAt = $"{at}.http.paths[{j}]";
                var path = paths[j]?["path"]?.GetValue<string>();
                switch (paths[j]?["pathType"]?.GetValue<string>())
                {
                    case null:
                        causes.Add(($"{pathAt}.pathType", "Required value: pathType must be specified"));
                        break;
                    case "Exact" or "Prefix" when path is null || !path.StartsWith('/'):
                        causes.Add(($"{pathAt}.path", $"Invalid value: \"{path}\": must be an absolute path"));
                        break;
                    case "Exact" or "Prefix" or "ImplementationSpecific":
                        break;
                    case var other:
                        causes.Add(($"{pathAt}.pathType", $"Unsupported value: \"{other}\": supported values: {string.Join(", ", PathTypes.Select(t => $"\"{t}\""))}"));
                        break;
                }

                if (paths[j]?["backend"] is JsonObject backend)
                {
                    ValidateIngressBackend(backend, $"{pathAt}.backend", causes);
                }
            }
        }
    }

    private static void ValidateIngressBackend(JsonObject backend, string at, List<(string Field, string Message)> causes)
    {
        var (service, resource) = (backend["service"] as JsonObject, backend["resource"] as JsonObject);
        if (service is not null && resource is not null)
        {
            causes.Add((at, "Invalid value: \"\": cannot set both resource and service backends"));
        }
        else if (service is null && resource is null)
        {
            causes.Add((at, "Invalid value: \"\": resource or service backend is required"));
        }

        if (service is null)
        {
            return;
        }

        if (service["name"]?.GetValue<string>() is { } name && KubeNames.CheckDnsLabel(name) is not null)
        {
            causes.Add(($"{at}.service.name", $"Invalid value: \"{name}\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character"));
        }

        var (portName, portNumber) = (service["port"]?["name"]?.GetValue<string>(), service["port"]?["number"]);
        if (portName is not null && portNumber is not null)
        {
            causes.Add(($"{at}.service.port", "Invalid value: \"\": cannot set both port name & port number"));
        }
        else if (portName is null && portNumber is null)
        {
            causes.Add(($"{at}.service.port", "Invalid value: \"\": port name or number is required"));
        }
        else if (portNumber is JsonValue number && number.TryGetValue<int>(out var n) && n is < 1 or > 65535)
        {
            causes.Add(($"{at}.service.port.number", $"Invalid value: {n}: must be between 1 and 65535, inclusive"));
        }
    }
}
