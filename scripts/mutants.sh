#!/bin/sh
# mutants.sh — `make mutants`: proves the tests catch real Raft bugs.
# Each tests/mutants/*.patch plants one realistic bug in the core. For each,
# the tree is copied to a temporary directory, the patch applied, the
# simulator built and run with its default seeds. The simulator must fail.
# A mutant the simulator's default run does not catch must be caught by the
# core's and the driver's unit tests (test_raft, test_scenarios,
# test_replica): those are the rare bugs
# pinned by a hand-written test (docs/simulator.md lists which). A mutant
# that survives both (or a patch that no longer applies) fails this run.
# Prints, per mutant, what caught it first.
set -u
root=$(pwd)
work=$(mktemp -d /tmp/linkraft-mutants.XXXXXX)
trap 'rm -rf "$work"' EXIT
caught=0
survived=0
# `sh scripts/mutants.sh tests/mutants/13-*.patch` runs only some.
[ $# -gt 0 ] || set -- tests/mutants/*.patch
for p in "$@"; do
  name=$(basename "$p" .patch)
  dir="$work/$name"
  mkdir -p "$dir"
  cp -r Makefile include src tests scripts "$dir"/
  mkdir -p "$dir/build" && [ -f build/.deps-ok ] && cp build/.deps-ok "$dir/build/"
  if ! (cd "$dir" && patch -s -p1 <"$root/$p" >/dev/null 2>&1); then
    echo "FAIL $name: patch no longer applies to src/raft (regenerate it)"
    survived=$((survived + 1))
    continue
  fi
  if ! make -s -C "$dir" -j2 build/sim >"$dir/build.log" 2>&1; then
    echo "FAIL $name: does not build"; tail -5 "$dir/build.log"
    survived=$((survived + 1))
    continue
  fi
  start=$(date +%s)
  (cd "$dir" && timeout 600 build/sim --jobs 2) >"$dir/sim.log" 2>&1
  rc=$?
  secs=$(( $(date +%s) - start ))
  if [ "$rc" -ne 0 ]; then
    seed=$(grep -oE -- '--seed [0-9]+' "$dir/sim.log" | head -n 1 | awk '{print $2}')
    what=$(grep -m1 -iE 'violation|violated|failed:' "$dir/sim.log" | cut -c1-110)
    echo "ok   $name: caught by seed ${seed:-?} in ${secs}s: ${what:-exit $rc}"
    caught=$((caught + 1))
    continue
  fi
  # The simulator missed it: the unit tests must not.
  if make -s -C "$dir" -j2 build/tests/test_raft build/tests/test_scenarios build/tests/test_replica \
    >>"$dir/build.log" 2>&1; then
    failed=""
    (cd "$dir" && build/tests/test_raft) >"$dir/unit.log" 2>&1 || failed="test_raft"
    (cd "$dir" && build/tests/test_scenarios) >>"$dir/unit.log" 2>&1 || failed="${failed:+$failed, }test_scenarios"
    (cd "$dir" && build/tests/test_replica) >>"$dir/unit.log" 2>&1 || failed="${failed:+$failed, }test_replica"
    if [ -n "$failed" ]; then
      which=$(grep -m1 -E '^FAIL ' "$dir/unit.log" | cut -c6-90)
      echo "ok   $name: missed by the simulator ($(tail -n 1 "$dir/sim.log")); caught by $failed: $which"
      caught=$((caught + 1))
      continue
    fi
  fi
  echo "FAIL $name: SURVIVED the default simulator run ($(tail -n 1 "$dir/sim.log")) and the unit tests"
  survived=$((survived + 1))
done
echo "mutants: $caught caught, $survived survived"
echo "$caught passed, $survived failed"
[ "$survived" -eq 0 ]
