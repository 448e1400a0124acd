#!/bin/sh
# sim-regressions.sh SIM — replays every seed listed in
# tests/sim/regressions/*.txt (one per line: "SEED [--nodes 5]  # what it
# caught"), seeds that once found a bug, so a fix that regresses fails
# here even when the random seeds of `make test` never draw that world.
# Ends with "N passed, N failed" like every suite.
set -u
sim=$1
passed=0
failed=0
for f in tests/sim/regressions/*.txt; do
  [ -f "$f" ] || continue
  # Strip comments and blank lines; what is left is the seed and its options.
  sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$f" >"${TMPDIR:-/tmp}/sim-regressions.$$"
  while read -r seed opts; do
    # shellcheck disable=SC2086 # opts are words on purpose
    if "$sim" --seed "$seed" $opts >"${TMPDIR:-/tmp}/sim-regression.$$.log" 2>&1; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      echo "FAIL seed $seed $opts ($f):"
      tail -n 5 "${TMPDIR:-/tmp}/sim-regression.$$.log" | sed 's/^/    /'
    fi
  done <"${TMPDIR:-/tmp}/sim-regressions.$$"
done
rm -f "${TMPDIR:-/tmp}/sim-regressions.$$" "${TMPDIR:-/tmp}/sim-regression.$$.log"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
