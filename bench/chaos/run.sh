#!/usr/bin/env bash
# Chaos run: every operation interrupted at POINTS random moments (SIGKILL of capstan, API faults, etcd frozen or
# restarted, local serve killed), then completed as a user would, with the invariants checked. Prints a table per
# operation and the seed; SEED=N replays a run. Needs etcd (apt-get install etcd-server) for the etcd faults.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
./capstan --version >/dev/null   # builds the CLI into artifacts/cli when its sources changed
etcd_flag=()
if command -v etcd >/dev/null 2>&1; then etcd_flag=(--etcd); fi
exec dotnet run -c Release --project bench/chaos/Capstan.Chaos -- \
  --capstan "$root/artifacts/cli/capstan.dll" --repo examples/wikifarm --points "${POINTS:-20}" \
  ${SEED:+--seed "$SEED"} "${etcd_flag[@]}" "$@"
