#!/usr/bin/env bash
# Embedded-cluster benchmark, on a copy of the example farm deployed to its local clusters:
#  (a) a no-op deploy, a diff and a status with the clusters hosted in-process, against `capstan --version`
#      (process start is the floor), as medians of ROUNDS runs and their ratios;
#  (c) `local serve` of a datacenter holding the deployed farm: time to its first answer, memory (RSS), and CPU
#      while idle for IDLE seconds.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-5}"
idle="${IDLE:-10}"
work="$(mktemp -d)"
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

capstan=("$root/capstan")
"${capstan[@]}" --version >/dev/null   # builds the CLI when needed, outside the timings
cp -r "$root/examples/wikifarm" "$work/farm"
rm -rf "$work/farm/.capstan"
echo "deploying the example farm to its embedded clusters..." >&2
"${capstan[@]}" deploy --repo "$work/farm" --yes >/dev/null 2>&1

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
measure() {
  local name="$1"; shift
  local times=()
  for _ in $(seq "$rounds"); do
    local start end
    start="$(now)"
    "$@" >/dev/null 2>&1 || true
    end="$(now)"
    times+=("$(calc "$end - $start")")
  done
  printf '%s\n' "${times[@]}" | median > "$work/$name"
}

measure version "${capstan[@]}" --version
measure deploy "${capstan[@]}" deploy --repo "$work/farm" --yes
measure diff "${capstan[@]}" diff --repo "$work/farm"
measure status "${capstan[@]}" status --repo "$work/farm"
floor="$(cat "$work/version")"
echo "(a) example farm deployed, clusters in-process, median of $rounds runs:"
printf '  %-28s %6.3f s\n' "capstan --version" "$floor"
for name in deploy diff status; do
  value="$(cat "$work/$name")"
  printf '  %-28s %6.3f s  = %5.1f x --version\n' "$name (no-op)" "$value" "$(calc "$value / $floor")"
done

# (c) one datacenter's server on its own.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
start="$(now)"
dotnet "$root/artifacts/cli/capstan.dll" local serve --dc eqiad --repo "$work/farm" --port "$port" >"$work/serve.log" 2>&1 &
serve_pid=$!
# The server speaks HTTPS with its own CA and requires its admin token (both in server.json, 0600); curl reads them
# from private files.
auth_header() {
  python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); open(sys.argv[2], "w").write(s["certificateAuthority"]); print("Authorization: Bearer " + s["token"])' \
    "$work/farm/.capstan/clusters/eqiad/server.json" "$work/ca.pem" >"$work/auth" 2>/dev/null
}
umask 077
until auth_header && curl -sf -o /dev/null --cacert "$work/ca.pem" -H "@$work/auth" "https://127.0.0.1:$port/api/v1/namespaces"; do
  kill -0 "$serve_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.02
done
ready="$(now)"
pods="$(curl -sf --cacert "$work/ca.pem" -H "@$work/auth" "https://127.0.0.1:$port/api/v1/pods" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["items"]))')"
sleep 2   # let the first controller passes settle
ticks() { awk '{ print $14 + $15 }' "/proc/$serve_pid/stat"; }
before="$(ticks)"
sleep "$idle"
after="$(ticks)"
rss_kb="$(awk '/VmRSS/ { print $2 }' "/proc/$serve_pid/status")"
hz="$(getconf CLK_TCK)"
echo "(c) local serve of eqiad holding the deployed farm ($pods pods):"
printf '  %-28s %6.3f s\n' "first answer after start" "$(calc "$ready - $start")"
printf '  %-28s %6.0f MiB\n' "resident memory" "$(calc "$rss_kb / 1024")"
printf '  %-28s %6.1f %% of a core (over %s s)\n' "CPU while idle" "$(calc "($after - $before) * 100 / $hz / $idle")" "$idle"
