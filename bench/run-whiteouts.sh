#!/usr/bin/env bash
# Prep of an image whose second layer whites out FILES (40,000) files of its first, vs its first layer alone (the
# baseline, same run): the whiteouts should not make prep grow with the tree.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
dotnet run -c Release --project bench/Capstan.Bench -- whiteouts --files "${FILES:-40000}" --rounds "${ROUNDS:-3}"
