#!/usr/bin/env bash
# State benchmark: a change of the dynamic state to a rendered cron group, and watch latency, on real etcd and the
# file store. Needs etcd (apt-get install etcd-server).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- state --repo examples/wikifarm --iterations "${ITERATIONS:-50}"
