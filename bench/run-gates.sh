#!/usr/bin/env bash
# Gate benchmark: (a) error rates of the example's gate checks on generated soak windows (a limit from 90 days of a
# noisy history as 'gate analyze' suggests it; false alarms on clean windows, catches on 5x error spikes); (b) on the
# example farm's mw-web with realistic pod timing and Debian's Prometheus scraping every 5 s, the time from the
# canaries being ready to the gate's verdict with a 30 s soak, on a pass and on a fail. Needs prometheus (apt).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- gates --soak "${SOAK:-30}" --scrape "${SCRAPE:-5}" --windows "${WINDOWS:-200}" --repo examples/wikifarm
