#!/usr/bin/env bash
# Backport benchmark on a copy of the example farm deployed to its embedded clusters (realistic pod timing), its
# php-1.44 code tree and config tree made git repositories (a deployed branch following an 'upstream' branch).
#  (a) ROUNDS times: a one-file code commit merged upstream, then `capstan backport COMMIT --yes`, timed to the end
#      (every pod on the new image), broken down by the phases it reports; against the baseline of the same change
#      shipped by `deploy --build-image --yes` in the same round;
#  (b) a config-only commit: what its dry run says each node pulls, and which releases restart.
# The gates are skipped (--skip-gates): they need a Prometheus scraping served clusters (`capstan local prometheus`),
# and their soak is a fixed time added to both sides.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${ROUNDS:-2}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
capstan=("$root/capstan")
"${capstan[@]}" --version >/dev/null   # builds the CLI when needed, outside the timings
farm="$work/farm"
cp -r "$root/examples/wikifarm" "$farm"
rm -rf "$farm/.capstan"
for tree in "$farm/code/php-1.44" "$farm/mediawiki-config"; do
  git -C "$tree" init -q -b main
  git -C "$tree" config user.name bench
  git -C "$tree" config user.email bench@example.org
  git -C "$tree" add -A
  git -C "$tree" commit -q -m base
  git -C "$tree" branch upstream
  git -C "$tree" branch -q --set-upstream-to=upstream
done
echo "deploying the example farm to its embedded clusters..." >&2
"${capstan[@]}" deploy --repo "$farm" --build-image --yes >/dev/null 2>&1

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
# A commit on the upstream branch of a tree, changing one file; prints its hash.
merge() {
  local tree="$1" file="$2" line="$3"
  git -C "$tree" checkout -q upstream
  echo "$line" >> "$tree/$file"
  git -C "$tree" commit -q -am "$line"
  git -C "$tree" rev-parse HEAD
  git -C "$tree" checkout -q main
}
# The phases of the result line of a -o json run, as NAME=SECONDS words.
phases() {
  python3 -c '
import json, sys
result = json.loads([l for l in sys.stdin.read().splitlines() if l.strip()][-1])
print(" ".join("%s=%s" % (p["name"].replace(" ", "-"), p["seconds"]) for p in result["phases"]))'
}

code="$farm/code/php-1.44"
for round in $(seq "$rounds"); do
  commit="$(merge "$code" includes/Setup.php "// backport $round")"
  start="$(now)"
  "${capstan[@]}" backport "$commit" --repo "$farm" --yes --skip-gates --reason bench -o json > "$work/backport.json" 2>/dev/null
  wall="$(calc "$(now) - $start")"
  p="$(phases < "$work/backport.json")"
  stages="$(echo "$p" | tr ' ' '\n' | awk -F= '/^stage-|^gate-/ { s += $2 } END { print s + 0 }')"
  build="$(echo "$p" | tr ' ' '\n' | awk -F= '/^build=|^push=/ { s += $2 } END { print s + 0 }')"
  all="$(echo "$p" | tr ' ' '\n' | awk -F= '{ s += $2 } END { print s + 0 }')"

  # The baseline: the same kind of change shipped as a full deploy --build-image.
  echo "// deploy $round" >> "$code/includes/Setup.php"
  git -C "$code" commit -q -am "deploy $round"
  start="$(now)"
  "${capstan[@]}" deploy --repo "$farm" --build-image --yes --skip-gates --reason bench -o json > "$work/deploy.json" 2>/dev/null
  base="$(calc "$(now) - $start")"
  git -C "$code" branch -q -f upstream main

  printf 'round %s: backport %.1f s (build+push %.2f s; stages %.1f s; phases reported %.1f s = %.0f%% of the wall; wall / stages %.2f); deploy --build-image %.1f s; backport / deploy %.2f\n' \
    "$round" "$wall" "$build" "$stages" "$all" "$(calc "100 * $all / $wall")" "$(calc "$wall / $stages")" "$base" "$(calc "$wall / $base")"
  echo "  phases: $p"
done

# (b) A config-only commit: the dry run's pull cost per node and the releases it restarts.
commit="$(merge "$farm/mediawiki-config" wmf-config/InitialiseSettings.php "// config-only change")"
"${capstan[@]}" backport "$commit" --repo "$farm" --dry-run -o json 2>/dev/null | head -n 1 > "$work/plan.json"
python3 - "$work/plan.json" <<'PY'
import json, sys
plan = json.load(open(sys.argv[1]))
changed = [r["release"] for r in plan["releases"] if r["change"] != "noop"]
cost = plan.get("pullCost") or []
per_node = max((c["bytesPerNode"] for c in cost), default=0)
print(f"config-only backport: {per_node} bytes pulled per node (largest of {len(cost)} releases), {len(changed)} releases restart: {', '.join(changed[:6])}{' …' if len(changed) > 6 else ''}")
PY
