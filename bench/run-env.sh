#!/usr/bin/env bash
# Environment benchmark: create (until every pod is ready, its own backends included) and delete an environment of
# mw-web + mw-api-int, and the isolation scan's share of the create, against
# the production deploy of the same releases, on the embedded cluster with realistic pod timing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- env --rounds "${ROUNDS:-3}" --repo examples/wikifarm
