#!/bin/sh
# http_hello.sh — serving speed of src/http against nginx: both serve the
# same 10 KB body on 127.0.0.1 (linkraft's bench/http_hello on one port,
# nginx with 1 worker, its own config, pid file and temp dir on another),
# each loaded in turn by `wrk -t2 -c64 -d5s`; prints req/s of each and the
# ratio. Needs the Debian packages nginx and wrk. Both servers are stopped
# and the temp dir removed on exit. Not part of `make test`.
# The machine is shared, so the two are run ROUNDS times alternately and
# the median of each is compared.
#   PORT_LINKRAFT (default 21901), PORT_NGINX (21902), DURATION (5s), ROUNDS (3)
set -eu
cd "$(dirname "$0")/.."
PORT_LINKRAFT=${PORT_LINKRAFT:-21901}
PORT_NGINX=${PORT_NGINX:-21902}
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}

for tool in nginx wrk curl; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || {
    echo "http_hello.sh: $tool is missing; run as root: apt-get install -y nginx wrk curl" >&2; exit 1; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

make -s build/libhttp.a
mkdir -p build/bench
cc -std=c11 -O2 -g -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude bench/http_hello.c build/libhttp.a \
   -luv -lhttp_parser -lssl -lcrypto -o build/bench/http_hello

tmp=$(mktemp -d /tmp/http_hello.XXXXXX)
chmod 755 "$tmp"
lr_pid=""
ng_pid=""
cleanup() {
  [ -n "$lr_pid" ] && kill "$lr_pid" 2>/dev/null && wait "$lr_pid" 2>/dev/null
  [ -n "$ng_pid" ] && kill "$ng_pid" 2>/dev/null && wait "$ng_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# The same 10240 bytes the C server sends.
head -c 10240 /dev/zero | tr '\0' 'x' >"$tmp/hello"
chmod 644 "$tmp/hello"
cat >"$tmp/nginx.conf" <<CONF
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  default_type text/plain;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path $tmp/body;
  proxy_temp_path $tmp/proxy;
  fastcgi_temp_path $tmp/fastcgi;
  uwsgi_temp_path $tmp/uwsgi;
  scgi_temp_path $tmp/scgi;
  server {
    listen 127.0.0.1:$PORT_NGINX;
    root $tmp;
    location / { try_files /hello =404; }
  }
}
CONF

build/bench/http_hello "127.0.0.1:$PORT_LINKRAFT" 2>"$tmp/linkraft.log" &
lr_pid=$!
"$NGINX" -c "$tmp/nginx.conf" -p "$tmp" -g 'daemon off;' 2>"$tmp/nginx.stderr" &
ng_pid=$!

# Wait (at most 5 s each) until both answer with the 10 KB body.
wait_up() {
  i=0
  while [ $i -lt 50 ]; do
    n=$(curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$1/hello" 2>/dev/null || true)
    [ "$n" = 10240 ] && return 0
    i=$((i + 1)); sleep 0.1
  done
  echo "http_hello.sh: nothing serving 10240 bytes on port $1" >&2
  cat "$tmp"/*.log "$tmp/nginx.stderr" >&2 2>/dev/null || true
  exit 1
}
wait_up "$PORT_LINKRAFT"
wait_up "$PORT_NGINX"

rps() { # port round -> req/s reported by wrk
  wrk -t2 -c64 -d"$DURATION" "http://127.0.0.1:$1/hello" >"$tmp/wrk.$1.$2"
  awk '/^Requests\/sec:/ { print $2 }' "$tmp/wrk.$1.$2"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
r=1
while [ $r -le "$ROUNDS" ]; do
  rps "$PORT_LINKRAFT" $r >>"$tmp/lr.all"
  rps "$PORT_NGINX" $r >>"$tmp/ng.all"
  echo "round $r: linkraft $(tail -n 1 "$tmp/lr.all") req/s, nginx $(tail -n 1 "$tmp/ng.all") req/s"
  r=$((r + 1))
done
lr=$(median <"$tmp/lr.all")
ng=$(median <"$tmp/ng.all")
echo "--- linkraft (src/http, 1 thread), last round"; cat "$tmp/wrk.$PORT_LINKRAFT.$ROUNDS"
echo "--- nginx $("$NGINX" -v 2>&1 | sed 's/.*\///') (1 worker), last round"; cat "$tmp/wrk.$PORT_NGINX.$ROUNDS"
echo
printf 'median of %s rounds: linkraft %s req/s, nginx %s req/s, ratio linkraft/nginx %s\n' "$ROUNDS" "$lr" "$ng" \
  "$(awk -v a="$lr" -v b="$ng" 'BEGIN { printf "%.2f", a / b }')"
