#!/usr/bin/env bash
# install-deps.sh -- installs the Debian packages Bellows builds and tests with, when missing.
# Safe to run again: it only calls apt-get when something is missing.
set -euo pipefail

packages=(cmake make gcc g++ git pkg-config ccache
          libmicrohttpd-dev libjansson-dev libcmocka-dev libedit-dev libcurl4-openssl-dev
          ca-certificates   # libcurl checks registries' HTTPS certificates against these
          chromium          # the chat page's browser tests (tests/ui, driven by playwright-core)
          clang libclang-rt-14-dev)  # fuzz/run: libFuzzer and clang's sanitizer runtimes
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm fetch llama.cpp (npm pack) and run the API tests. Any install that puts
# `node` and `npm` on PATH will do (Debian's packages, or NodeSource's, which bundles npm).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "bellows: installing Debian packages: ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "bellows: run as root or install sudo to install ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
