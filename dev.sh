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

# The node tests' npm packages, pinned by each folder's package-lock.json: the API tests'
# clients (tests/api), the template oracle, @huggingface/jinja (tests/template), and
# playwright-core for the chat page's browser tests (tests/ui; the browser is Debian's).
api_test_deps() {
  local d
  for d in tests/api tests/template tests/ui; do
    if [ ! -d $d/node_modules ] || [ $d/package-lock.json -nt $d/node_modules ]; then
      (cd $d && npm ci --no-audit --no-fund --loglevel=error)
      touch $d/node_modules
    fi
  done
}

case "${1:-}" in
  build)
    build ;;
  demo)
    build
    # `bellows run` starts a server in the background when none answers at BELLOWS_HOST
    # (default 127.0.0.1:11434); the server adds the demo model as `demo` on first start.
    echo "--- bellows run demo (a bigram of the docs' words in a tiny qwen2: English words, no sense)"
    ./build/src/bellows run --verbose demo "Why is the sky blue?"
    echo "--- the chat page: http://${BELLOWS_HOST:-127.0.0.1:11434}/ui" ;;
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
