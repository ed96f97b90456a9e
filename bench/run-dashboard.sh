#!/usr/bin/env bash
# Dashboard benchmark: the server time of the overview page, of /api/v1/releases and of the page of the largest release
# (352 pods) for the deployed example farm,
# against the work of `capstan status -o json` for the same data, measured in turn in one process.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- dashboard --rounds "${ROUNDS:-20}" --repo examples/wikifarm
