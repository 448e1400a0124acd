#!/bin/sh
# check-layers.sh BUILD "module:used modules" ... — fails if a module reaches
# a module its line in the Makefile (USES_*) does not name, seen two ways:
#   - #include lines of src/MODULE/*.[ch] and of the public headers it owns
#     (include/*.h: owners listed below), and a module's private header
#     (src/M/internal.h) included from outside M;
#   - undefined symbols of the module's object files (nm) that another
#     module's objects define.
# Like check-purity.sh, it reads what the build produced, so nothing the
# compiler or linker sees can slip past it.
set -eu
build=$1
shift

# Who owns each public header (include/NAME.h).
owner_of_public() {
  case $1 in
    raft.h|raft_codec.h) echo raft ;;
    storage.h) echo storage ;;
    store.h|command.h) echo store ;;
    net.h) echo net ;;
    http.h|http_client.h) echo http ;;
    site.h) echo site ;;
    node.h|admin_auth.h|backup.h) echo node ;;
    gateway.h) echo gateway ;;
    *) echo "?" ;;
  esac
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
uses_of() { grep "^$1:" "$tmp/uses" | cut -d: -f2; }
for spec in "$@"; do echo "$spec" >>"$tmp/uses"; done

objs_of() {
  if [ "$1" = cli ]; then ls "$build"/obj/src/cli/*.o; else echo "$build/lib$1.a"; fi
}

# symbol -> module that defines it
for spec in "$@"; do
  m=${spec%%:*}
  nm --defined-only $(objs_of "$m") 2>/dev/null | awk -v m="$m" 'NF==3 && $2 ~ /[TDRBCV]/ {print $3, m}' >>"$tmp/defs"
done
sort -u -o "$tmp/defs" "$tmp/defs"

allowed() { # allowed FROM TO
  [ "$1" = "$2" ] && return 0
  for u in $(uses_of "$1"); do [ "$u" = "$2" ] && return 0; done
  return 1
}

for spec in "$@"; do
  m=${spec%%:*}
  # Symbols.
  nm -u $(objs_of "$m") 2>/dev/null | awk '$1=="U"{print $2}' | sed 's/@.*//' | sort -u >"$tmp/undef"
  join "$tmp/undef" "$tmp/defs" | while read -r sym to; do
    if ! allowed "$m" "$to"; then
      echo "check-layers: src/$m uses $sym from src/$to, which USES_$m does not allow" >&2
      echo bad >>"$tmp/failed"
    fi
  done
  # Includes: the module's sources and the public headers it owns.
  files=$(ls src/"$m"/*.c src/"$m"/*.h 2>/dev/null || true)
  for h in include/*.h; do
    [ "$(owner_of_public "$(basename "$h")")" = "$m" ] && files="$files $h"
  done
  for f in $files; do
    grep -o '^#include "[^"]*"' "$f" | sed 's/^#include "//; s/"$//' | while read -r inc; do
      case $inc in
        */*) to=${inc%%/*} ;;
        *) if [ -e "$(dirname "$f")/$inc" ] && [ "$(dirname "$f")" != include ]; then to=$m
           elif [ -e "include/$inc" ]; then to=$(owner_of_public "$inc")
           else to="?"; fi ;;
      esac
      if [ "$to" = "?" ]; then
        echo "check-layers: $f includes \"$inc\", whose module this script does not know (owner_of_public)" >&2
        echo bad >>"$tmp/failed"
      elif ! allowed "$m" "$to"; then
        echo "check-layers: $f includes \"$inc\" from src/$to, which USES_$m does not allow" >&2
        echo bad >>"$tmp/failed"
      elif [ "$to" != "$m" ] && [ "${inc##*/}" = internal.h ]; then
        echo "check-layers: $f includes \"$inc\", the private header of src/$to" >&2
        echo bad >>"$tmp/failed"
      fi
    done
  done
done
if [ -e "$tmp/failed" ]; then
  status=1
else
  echo "check-layers: $# modules use only what their USES_ lines allow (includes and symbols)"
fi
exit $status
