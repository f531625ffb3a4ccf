#!/usr/bin/env bash
# build-peers.sh -- builds llama.cpp's own `llama-bench` and `llama-server` from the very
# source Bellows links (build/_deps/llama.cpp, the pinned commit) into build-peers/.
# Same ggml options as Bellows' build (Release, GGML_NATIVE, OpenMP); nothing is fetched:
# no web UI (neither npm nor the prebuilt download), no OpenSSL, no curl.
# Skipped when both binaries are newer than the source's commit marker.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
src="$root/build/_deps/llama.cpp"
out="$root/build-peers"
jobs=${BENCH_JOBS:-2}

if [ ! -f "$src/include/llama.h" ]; then
  echo "build-peers: $src is missing: build Bellows first (./dev.sh build)" >&2
  exit 1
fi
if [ -x "$out/bin/llama-bench" ] && [ -x "$out/bin/llama-server" ] \
   && [ "$out/bin/llama-server" -nt "$src/.bellows-commit" ]; then
  exit 0
fi

export CCACHE_BASEDIR="$root"
launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
mkdir -p "$out"
echo "build-peers: configuring llama.cpp $(cat "$src/.bellows-commit" 2>/dev/null || echo '?') into build-peers/"
cmake -S "$src" -B "$out" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" \
  -DBUILD_SHARED_LIBS=OFF \
  -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_COMMON=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_APP=OFF \
  -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_LLGUIDANCE=OFF \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DGGML_NATIVE=ON -DGGML_OPENMP=ON >"$out/configure.log" 2>&1 || {
    cat "$out/configure.log" >&2; exit 1; }
echo "build-peers: building llama-bench llama-server (-j$jobs; several minutes the first time)"
cmake --build "$out" -j "$jobs" --target llama-bench llama-server >"$out/build.log" 2>&1 || {
  tail -50 "$out/build.log" >&2; exit 1; }
ls -l "$out/bin/llama-bench" "$out/bin/llama-server"
