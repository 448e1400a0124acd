#!/bin/sh
# deps.sh — makes sure the Debian packages linkraft needs are installed.
# As root it installs what is missing; otherwise it prints the one
# `apt-get install` line a person needs to run, and fails.
#   sh scripts/deps.sh build     what `make` needs
#   sh scripts/deps.sh test      plus what `make test` needs
#   sh scripts/deps.sh bench     plus what `make bench` needs
#   sh scripts/deps.sh fuzz      plus what `make fuzz` needs (clang, libFuzzer)
#   sh scripts/deps.sh chaos     plus what `make chaos` needs (namespaces, nftables)
set -eu
want="gcc make libc6-dev libuv1-dev libsqlite3-dev libsodium-dev libhttp-parser-dev libssl-dev libidn2-dev zlib1g-dev pkg-config"
case "${1:-build}" in
  build) ;;
  test) want="$want python3 python3-pytest curl iproute2 haproxy nginx chromium openssl nftables faketime"
        command -v node >/dev/null 2>&1 || want="$want nodejs"
        command -v npm >/dev/null 2>&1 || want="$want npm" ;;
  bench) want="$want python3 curl wrk nginx etcd-server etcd-client" ;;
  fuzz) want="$want clang libclang-rt-14-dev" ;;
  chaos) want="$want python3 iproute2 nftables faketime" ;;
  *) echo "usage: deps.sh build|test|bench|fuzz|chaos" >&2; exit 2 ;;
esac
missing=""
for p in $want; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# The browser test's driver, playwright-core, and its accessibility audit,
# axe-core, come from npm at the versions
# pinned in tests/browser/package-lock.json (it drives Debian's chromium;
# it never downloads a browser).
npm_deps() {
  [ "${1:-build}" = test ] || return 0
  [ -d tests/browser/node_modules/playwright-core ] && [ -d tests/browser/node_modules/axe-core ] && return 0
  echo "deps.sh: npm ci in tests/browser (playwright-core, axe-core)" >&2
  (cd tests/browser && npm ci --no-audit --no-fund >/dev/null 2>&1) || {
    echo "deps.sh: 'npm ci' in tests/browser failed; run it by hand to see why" >&2
    return 1
  }
}
if [ -z "$missing" ]; then
  npm_deps "${1:-build}"
  exit $?
fi
if [ "$(id -u)" = 0 ]; then
  echo "deps.sh: installing:$missing" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends $missing >/dev/null 2>&1 || {
    apt-get update >/dev/null 2>&1
    apt-get install -y --no-install-recommends $missing
  }
  npm_deps "${1:-build}"
else
  echo "deps.sh: missing Debian packages. Run as root:" >&2
  echo "  apt-get install -y$missing" >&2
  exit 1
fi
