#!/usr/bin/env bash
# Deploy benchmark: (a) a no-change plan of a synthetic farm of N releases x 2 datacenters on the embedded clusters;
# (b) the example farm deployed with simulated rollout durations, against the critical path of its plan.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- deploy --releases "${RELEASES:-1000}" --repo examples/wikifarm
