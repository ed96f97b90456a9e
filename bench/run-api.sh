#!/usr/bin/env bash
# API benchmark: apply N objects through Capstan's client to the embedded API server, then list them back.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- api --objects "${OBJECTS:-1000}" --parallel "${PARALLEL:-8}"
