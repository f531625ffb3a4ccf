#!/usr/bin/env bash
# dev.sh -- the two commands of the README, and the steps under them.
#   ./dev.sh demo    install what is missing, build, start a server and chat with the demo model
#   ./dev.sh test    install what is missing, build, and run the whole test suite
#   ./dev.sh build   install what is missing and build
# The build lives in build/ (kept between runs); llama.cpp's fetched package is cached in
# ~/.cache/bellows, and ccache keeps rebuilds of it cheap.
set -euo pipefail
cd "$(dirname "$0")"
root=$(pwd)
export CCACHE_BASEDIR="$root"   # cache hits across clones in other folders (CI)
jobs=$(nproc 2>/dev/null || echo 2)

build() {
  scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j "$jobs"
}

# The API tests' npm clients, pinned by tests/api/package-lock.json.
api_test_deps() {
  if [ ! -d tests/api/node_modules ] || [ tests/api/package-lock.json -nt tests/api/node_modules ]; then
    (cd tests/api && npm ci --no-audit --no-fund --loglevel=error)
    touch tests/api/node_modules
  fi
}

case "${1:-}" in
  build)
    build ;;
  demo)
    build
    # `bellows run` starts a server in the background when none answers at BELLOWS_HOST
    # (default 127.0.0.1:11434); the server adds the demo model as `demo` on first start.
    echo "--- bellows run demo (random weights: the words are gibberish by design)"
    ./build/src/bellows run --verbose demo "Why is the sky blue?" ;;
  test)
    build
    api_test_deps
    # One test at a time: each runner uses every core (OpenMP), and two of them at once
    # on 2 cores spin against each other and run many times slower.
    ctest --test-dir build --output-on-failure ;;
  *)
    echo "usage: ./dev.sh demo | test | build" >&2
    exit 2 ;;
esac
