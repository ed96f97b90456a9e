#!/usr/bin/env bash
# Render benchmark: Capstan's full-farm render against `helm template` of a comparable chart, on this machine.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
helm="${HELM:-$(bench/get-helm.sh 2>/dev/null || true)}"
args=(render --repo examples/wikifarm --iterations "${ITERATIONS:-50}")
if [ -n "$helm" ] && [ -x "$helm" ]; then
  args+=(--helm "$helm" --chart bench/charts/mediawiki)
fi
dotnet run -c Release --project bench/Capstan.Bench -- "${args[@]}"
