#!/usr/bin/env bash
# One setup path for every entry point (npm test, npm run demo, npm run bench:*):
# installs what is missing on a Debian machine (libtorch and build tools with apt-get, npm
# packages with npm ci), builds the native addon, and is a quick no-op when all is present.
#
#   LIBTORCH=<dir>        build against another libtorch (an unpacked official archive, or the
#                         torch/ folder of a Python PyTorch install); apt's libtorch is skipped.
#   LIBTORCH_CXX11_ABI=0  for libtorch builds with the pre-C++11 ABI (official "pre-cxx11" archives).
#   UNICHAR_SKIP_APT=1    never call apt-get (report what is missing instead).
#   UNICHAR_EXTRA_PKGS="..." more Debian packages to ensure (benchmarks add python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '[setup] %s\n' "$*"; }

# ---- system packages ----
need_pkgs=()
if [ -z "${LIBTORCH:-}" ]; then
  # libopenblas0-pthread: without it Debian's libtorch runs matrix products on the reference
  # BLAS, about ten times slower.
  for p in libtorch-dev libgloo-dev libopenblas0-pthread; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
  done
fi
for p in ${UNICHAR_EXTRA_PKGS:-}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$p")
done
for p in g++ make python3; do
  command -v "$p" >/dev/null 2>&1 || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  # Debian names: the g++ and make commands come from these packages.
  pkgs=()
  for p in "${need_pkgs[@]}"; do
    case "$p" in g++) pkgs+=(g++) ;; make) pkgs+=(make) ;; python3) pkgs+=(python3) ;; *) pkgs+=("$p") ;; esac
  done
  if [ "${UNICHAR_SKIP_APT:-0}" = 1 ]; then
    say "missing system packages: ${pkgs[*]} (UNICHAR_SKIP_APT=1, not installing)"; exit 1
  fi
  if [ "$(id -u)" != 0 ]; then
    say "missing system packages: ${pkgs[*]}; run as root or: sudo apt-get install -y ${pkgs[*]}"; exit 1
  fi
  say "installing ${pkgs[*]} with apt-get (once)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${pkgs[@]}" >/dev/null
fi
if [ -n "${LIBTORCH:-}" ] && [ ! -f "$LIBTORCH/include/torch/csrc/api/include/torch/torch.h" ]; then
  say "LIBTORCH=$LIBTORCH does not look like a libtorch folder (include/torch/csrc/api/include/torch/torch.h is missing)"
  exit 1
fi

# ---- npm packages ----
stamp=node_modules/.package-lock.stamp
lock_sum=$(sha1sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_sum" ]; then
  say "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_sum" > "$stamp"
fi

# ---- native addon ----
addon=native/build/Release/unicharacter_torch.node
build_stamp=native/build/.config
want_config="LIBTORCH=${LIBTORCH:-/usr} ABI=${LIBTORCH_CXX11_ABI:-1}"
rebuild=0
if [ ! -f "$addon" ] || [ ! -f "$build_stamp" ] || [ "$(cat "$build_stamp")" != "$want_config" ]; then
  rebuild=1
elif [ -n "$(find native/src native/binding.gyp native/config.cjs -newer "$addon" -print -quit)" ]; then
  rebuild=1
fi
if [ "$rebuild" = 1 ]; then
  say "building the native addon against ${LIBTORCH:-Debian libtorch} (about 2 minutes)"
  npx --no-install node-gyp rebuild --directory native -j "$(nproc)" --loglevel=error >native-build.log 2>&1 || {
    tail -40 native-build.log; say "native build failed (full log: native-build.log)"; exit 1; }
  echo "$want_config" > "$build_stamp"
  rm -f native-build.log
fi
