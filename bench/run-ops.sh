#!/usr/bin/env bash
# Operations benchmark: maintenance disable until nothing runs, and switchovers (total and read-only window), on the
# embedded clusters with realistic pod timing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- ops --rounds "${ROUNDS:-5}" --repo examples/wikifarm
