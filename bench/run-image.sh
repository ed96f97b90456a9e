#!/usr/bin/env bash
# Image benchmark on Debian's MediaWiki tree: tar | gzip -1 and umoci repack as baselines, then Capstan's cold build,
# warm rebuild after one changed file (and its push to a real docker-registry), and a second version.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- image --tree "${TREE:-/usr/share/mediawiki}"
