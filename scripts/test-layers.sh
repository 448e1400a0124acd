#!/bin/sh
# test-layers.sh — the layer check (scripts/check-layers.sh, USES_* in the
# Makefile), and a check of the check: a core object that calls the log of
# src/sys must be rejected, naming the symbol.
set -u
passed=0
failed=0
if make -s check-layers; then passed=$((passed + 1)); else echo "FAIL: a module reaches outside its layers"; failed=$((failed + 1)); fi
tmp=$(mktemp -d)
printf 'void log_msg(int l, const char *f, ...);\nvoid upward(void){ log_msg(1, "x"); }\n' >"$tmp/up.c"
printf 'void log_msg(int l, const char *f, ...){ (void)l; (void)f; }\n' >"$tmp/log.c"
cc -c "$tmp/up.c" -o "$tmp/up.o" && ar rcs "$tmp/libraft.a" "$tmp/up.o"
cc -c "$tmp/log.c" -o "$tmp/log.o" && ar rcs "$tmp/libsys.a" "$tmp/log.o"
if sh scripts/check-layers.sh "$tmp" "raft:common" "sys:common" >/dev/null 2>"$tmp/err"; then
  echo "FAIL: check-layers accepted src/raft calling log_msg of src/sys"
  failed=$((failed + 1))
elif grep -q "src/raft uses log_msg from src/sys" "$tmp/err"; then
  passed=$((passed + 1))
else
  echo "FAIL: check-layers rejected the upward call without naming it"; cat "$tmp/err"
  failed=$((failed + 1))
fi
rm -rf "$tmp"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
