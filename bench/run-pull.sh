#!/usr/bin/env bash
# Image distribution benchmark: mw-web's main release (352 replicas) rolled out onto 200 simulated nodes after a
# one-file change and after a change of every layer, each without and with a pre-pull: rollout time, the pre-pull's
# time, registry bytes and peak egress. The MediaWiki image is built from Debian's tree (apt-get install mediawiki).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- pull --nodes "${NODES:-200}" --tree "${TREE:-/usr/share/mediawiki}" --repo examples/wikifarm
