#!/usr/bin/env bash
# The test command (README): installs what is missing, then type-checks, lints, builds the eBPF
# objects and runs every test tier in one mocha run. Ends with a plain "N passed, N failed" line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash hack/install-tools.sh all
npm run -s build:bpf
npm run -s typecheck
npm run -s lint

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
npx mocha --config .mocharc.json --timeout 180000 \
  'crds/**/*.test.ts' 'controllers/**/*.test.ts' 'datapath/**/*.test.ts' 'hack/**/*.test.ts' 'test/**/*.test.ts' \
  2>&1 | tee "$out" || status=$?
passed="$(sed -n 's/^ *\([0-9][0-9]*\) passing.*/\1/p' "$out" | tail -1)"
failed="$(sed -n 's/^ *\([0-9][0-9]*\) failing.*/\1/p' "$out" | tail -1)"
echo "${passed:-0} passed, ${failed:-0} failed"
if [ "${passed:-0}" -eq 0 ]; then echo "no test ran" >&2; exit 1; fi
exit "$status"
