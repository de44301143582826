#!/bin/sh
# Installs the Debian packages llmpin needs to build, test, fuzz and benchmark,
# skipping those already present. Safe to run repeatedly.
set -e
pkgs="build-essential cmake pkg-config libevent-dev libssl-dev libcjson-dev
libcurl4-openssl-dev libopenblas-dev libsqlite3-dev libpcre2-dev libunistring-dev python3 python3-jsonschema
nodejs npm openssl"
[ "${LLMPIN_BENCH:-0}" = 1 ] && pkgs="$pkgs wrk nginx"
# tests/fuzz/run.sh: clang and the compiler-rt runtimes (libFuzzer, ASan, UBSan)
# for Debian's default clang
[ "${LLMPIN_FUZZ:-0}" = 1 ] && pkgs="$pkgs clang libclang-rt-dev"
missing=""
for p in $pkgs; do
  # nodejs/npm may come from outside Debian: accept any working binary
  case $p in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq $missing
