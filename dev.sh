#!/usr/bin/env bash
# dev.sh -- the two commands of the README, and the steps under them.
#   ./dev.sh demo    install what is missing, build, start a server and chat with the demo model
#   ./dev.sh test    install what is missing, build, and run the whole test suite, then the
#                    two steps below
#   ./dev.sh build   install what is missing and build
#   ./dev.sh test-asan  the whole suite again in build-asan/ (-DBELLOWS_SANITIZE=ON: ASan,
#                    UBSan, LSan); any sanitizer report fails it
#   ./dev.sh fuzz [SECONDS]  build-fuzz/ (clang, -DBELLOWS_FUZZ=ON) and each libFuzzer harness
#                    for SECONDS (default 20) on its seed corpus: fuzz/run
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

# The suite under ASan + UBSan + LSan (issue 13 item 8). Reports go to files, not to the
# tests' stderr (some tests read it), and any file there fails the run, so a report from a
# server or runner process that a node test started counts too, even when that test passed.
# Leaks: scripts/lsan.supp suppresses third-party ones only, each with its reason.
test_asan() {
  scripts/install-deps.sh
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Release -DBELLOWS_SANITIZE=ON >/dev/null
  cmake --build build-asan -j "$jobs"
  api_test_deps
  local logs="$root/build-asan/sanitizer-logs"
  rm -rf "$logs" && mkdir -p "$logs"
  local rc=0
  ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1" \
  LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure || rc=$?
  if compgen -G "$logs/*" >/dev/null; then
    echo "--- sanitizer reports ($logs):" >&2
    head -n 60 "$logs"/* >&2
    rc=1
  fi
  return $rc
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
    ctest --test-dir build --output-on-failure
    test_asan
    fuzz/run 20 ;;
  test-asan)
    test_asan ;;
  fuzz)
    scripts/install-deps.sh
    fuzz/run "${2:-20}" ;;
  *)
    echo "usage: ./dev.sh demo | test | build | test-asan | fuzz [SECONDS]" >&2
    exit 2 ;;
esac
