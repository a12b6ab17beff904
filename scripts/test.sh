#!/usr/bin/env bash
# The one test command (README quick start, .ci/run): installs what is missing, builds, runs
# every test. Integration tests start their own etcd and redis-server on free loopback ports;
# the DNS tests query with dig (dnsutils); the TLS tests make certificates with openssl and
# speak HTTP/2 with curl; the web UI tests drive a headless chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v etcd >/dev/null 2>&1 || need_pkgs+=(etcd-server)
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v dig >/dev/null 2>&1 || need_pkgs+=(dnsutils)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_pkgs[*]} (Debian packages) ..."
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
  else
    echo "missing ${need_pkgs[*]}: run 'sudo apt-get install -y ${need_pkgs[*]}' (Debian/Ubuntu) and retry" >&2
    exit 1
  fi
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

rm -rf dist  # stale outputs of deleted tests must not run
npm run --silent build
npm run --silent typecheck
npm run --silent lint

# Layers: unit, API (inject), conformance, integration (real etcd/redis), end-to-end (CLI).
# Only *.test.js: Node 20 would otherwise treat every file under a test/ folder as a test.
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
node --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=240000 "${files[@]}"
