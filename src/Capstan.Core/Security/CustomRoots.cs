using System.Security.Cryptography.X509Certificates;

namespace Capstan.Core.Security;

/// <summary>Certificate checks against roots a configuration names (a kubeconfig's CA, etcd's cacert=), not the system's.</summary>
public static class CustomRoots
{
    /// <summary>
    /// True when <paramref name="presented"/> chains to one of <paramref name="roots"/>, through the intermediates the
    /// server sent along (<paramref name="sent"/>, the chain the platform built for the handshake).
    /// </summary>
    public static bool Chains(X509Certificate2 presented, X509Chain? sent, X509Certificate2Collection roots)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (sent is not null)
        {
            chain.ChainPolicy.ExtraStore.AddRange(sent.ChainPolicy.ExtraStore);
            foreach (var element in sent.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(presented);
    }
}
