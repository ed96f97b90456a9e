namespace Capstan.Core.Kubernetes;

/// <summary>
/// Kubernetes name rules (RFC 1123 labels and subdomains, label values). Names are validated, never
/// silently lower-cased or truncated: a name that breaks a rule is a user error to be reported.
/// </summary>
public static class KubeNames
{
    /// <summary>Longest DNS label (namespace, Service, container, port names).</summary>
    public const int MaxLabelLength = 63;

    /// <summary>Longest DNS subdomain (Deployment, ConfigMap, Secret names).</summary>
    public const int MaxSubdomainLength = 253;

    /// <summary>Longest CronJob name: the controller appends an 11-character suffix to Job names.</summary>
    public const int MaxCronJobNameLength = 52;

    /// <summary>Longest port name (IANA service name).</summary>
    public const int MaxPortNameLength = 15;

    /// <summary>Null when <paramref name="name"/> is an RFC 1123 label, else why it is not.</summary>
    public static string? CheckDnsLabel(string name, int maxLength = MaxLabelLength)
    {
        if (name.Length == 0)
        {
            return "must not be empty";
        }

        if (name.Length > maxLength)
        {
            return $"must be at most {maxLength} characters (it has {name.Length})";
        }

        foreach (var c in name)
        {
            if (!IsLowerAlnum(c) && c != '-')
            {
                return "must consist of lower-case letters, digits and '-' (RFC 1123 label)";
            }
        }

        if (!IsLowerAlnum(name[0]) || !IsLowerAlnum(name[^1]))
        {
            return "must start and end with a lower-case letter or digit (RFC 1123 label)";
        }

        return null;
    }

    /// <summary>Null when <paramref name="name"/> is an RFC 1123 subdomain, else why it is not.</summary>
    public static string? CheckDnsSubdomain(string name)
    {
        if (name.Length == 0)
        {
            return "must not be empty";
        }

        if (name.Length > MaxSubdomainLength)
        {
            return $"must be at most {MaxSubdomainLength} characters (it has {name.Length})";
        }

        foreach (var part in name.Split('.'))
        {
            if (part.Length == 0 || CheckDnsLabel(part) is not null)
            {
                return "must consist of lower-case letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit (RFC 1123 subdomain)";
            }
        }

        return null;
    }

    /// <summary>Null when <paramref name="value"/> is a valid label value, else why it is not.</summary>
    public static string? CheckLabelValue(string value)
    {
        if (value.Length == 0)
        {
            return null;
        }

        if (value.Length > MaxLabelLength)
        {
            return $"must be at most {MaxLabelLength} characters (it has {value.Length})";
        }

        foreach (var c in value)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.'))
            {
                return "must consist of letters, digits, '-', '_' and '.'";
            }
        }

        return char.IsAsciiLetterOrDigit(value[0]) && char.IsAsciiLetterOrDigit(value[^1])
            ? null
            : "must start and end with a letter or digit";
    }

    /// <summary>The environment variable name Kubernetes injects for a Service: upper case, '-' as '_'.</summary>
    public static string ServiceEnvPrefix(string serviceName) =>
        serviceName.ToUpperInvariant().Replace('-', '_');

    private static bool IsLowerAlnum(char c) => c is (>= 'a' and <= 'z') or (>= '0' and <= '9');
}
