#!/bin/sh
# upgrade-test.sh REF DIR NEW_BINARY — builds linkraft at git commit REF in
# DIR (once: kept for the next run) and runs tests/upgrade against it: a
# cluster of REF's binary upgraded one node at a time to NEW_BINARY
# (docs/operations.md "Upgrade"). Needs the git history (a clone, not an
# archive) and a few minutes for the build.
set -e
ref=$1 dir=$2 new=$3
if [ ! -x "$dir/build/linkraft" ]; then
  echo "building the previous release ($ref) in $dir"
  rm -rf "$dir"
  mkdir -p "$dir"
  git archive "$ref" | tar -x -C "$dir"
  make -C "$dir" -s -j2 build/linkraft
fi
LINKRAFT_OLD_BIN="$(cd "$dir" && pwd)/build/linkraft" LINKRAFT_BIN="$(cd "$(dirname "$new")" && pwd)/$(basename "$new")" \
  exec /usr/bin/python3 -m pytest -q -s -p no:cacheprovider tests/upgrade
