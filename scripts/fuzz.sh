#!/bin/sh
# fuzz.sh — what `make fuzz` runs: each libFuzzer driver for SECONDS from its
# checked-in seed corpus, one after the other (one job each: the machine is
# shared). New inputs go to DIR/corpus/NAME, so the checked-in corpus only
# changes when a person copies a case into it; a crash is saved as
# DIR/crash-NAME-* and fails the run. Ends with one line per fuzzer:
# executions, executions per second, corpus size.
#   sh scripts/fuzz.sh DIR SECONDS NAME...
set -u
dir=$1; secs=$2; shift 2
status=0
summary=""
for name in "$@"; do
  bin="$dir/fuzz_$name"
  work="$dir/corpus/$name"
  log="$dir/fuzz-$name.log"
  mkdir -p "$work"
  dict=""
  [ -f "fuzz/$name.dict" ] && dict="-dict=fuzz/$name.dict"
  echo "== fuzz_$name for ${secs}s (log: $log)"
  # shellcheck disable=SC2086
  "$bin" -max_total_time="$secs" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    -artifact_prefix="$dir/crash-$name-" $dict "$work" "fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
  units=$(find "$work" -type f | wc -l)
  if [ "$rc" -ne 0 ]; then
    status=1
    echo "FAIL fuzz_$name (exit $rc):"
    { grep -E 'ERROR|fuzz property|SUMMARY|Test unit written' "$log" || tail -n 5 "$log"; } |
      head -n 20 | sed 's/^/    /'
  fi
  summary="$summary$(printf '%-8s %12s execs %8s/s  %5s new inputs  %s' "$name" "${execs:-?}" \
    "${rate:-?}" "$units" "$( [ "$rc" -eq 0 ] && echo ok || echo CRASH)")
"
done
echo "== fuzz summary (${secs}s each)"
printf '%s' "$summary"
exit $status
