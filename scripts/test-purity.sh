#!/bin/sh
# test-purity.sh — the purity check of the Raft core, and a check of the
# check: an object that calls printf and time() must be rejected.
set -u
passed=0
failed=0
if make -s check-purity; then passed=$((passed + 1)); else echo "FAIL: the core uses a forbidden symbol"; failed=$((failed + 1)); fi
tmp=$(mktemp -d)
printf '#include <stdio.h>\n#include <time.h>\nint impure(int v){ printf("%%d", v); return (int)time(0); }\n' >"$tmp/impure.c"
cc -c "$tmp/impure.c" -o "$tmp/impure.o" && ar rcs "$tmp/libimpure.a" "$tmp/impure.o"
if sh scripts/check-purity.sh "$tmp/libimpure.a" >/dev/null 2>"$tmp/err" && true; then
  echo "FAIL: check-purity accepted a library calling printf and time"
  failed=$((failed + 1))
elif grep -q printf "$tmp/err" && grep -q time "$tmp/err"; then
  passed=$((passed + 1))
else
  echo "FAIL: check-purity rejected the impure library without naming printf and time"; cat "$tmp/err"
  failed=$((failed + 1))
fi
rm -rf "$tmp"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
