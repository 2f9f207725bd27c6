#!/usr/bin/env bash
# The engine on libtorch 2.6 (docs/engine.md, "libtorch versions"): builds and tests the addon
# inside a Debian trixie root, whose own packages carry libtorch 2.6, Gloo, PyTorch 2.6 for
# Python and Node.js 20.
#
#   bash scripts/libtorch2.sh [test|bench|gen-ops|node ARGS...|shell|root|--help]
#
#   test     (default) build the addon against libtorch 2.6 and run the engine, nn and model tests
#   bench    run bench:engine and bench:train there (200 memory steps; README left as is)
#   gen-ops  write libtorch 2.6's operator schemas and regenerate the binding (docs/engine.md)
#   node     run node with ARGS in the checkout there, after the build (bench:libtorch uses it)
#   shell    an interactive shell in the trixie root, the checkout mounted at the same path
#   root     only make (or check) the trixie root
#
# The root is made once with debootstrap (about 3 GB, 8 minutes here; later runs reuse it):
#   UNICHAR_TRIXIE_ROOT=<dir>    where (default .cache/trixie-root in the checkout, git-ignored)
#   UNICHAR_TRIXIE_MIRROR=<url>  the Debian mirror (default http://deb.debian.org/debian)
# The 2.6 addon is built in .cache/libtorch2-build, mounted over native/build inside the root, so
# the libtorch 1.13 build in native/build is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd -P)

say() { printf '[libtorch2] %s\n' "$*"; }
die() { say "$*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }

action=${1:-test}
case "$action" in
  -h|--help|help) usage; exit 0 ;;
  test|bench|gen-ops|node|shell|root) ;;
  *) usage >&2; die "unknown action '$action'" ;;
esac

root=${UNICHAR_TRIXIE_ROOT:-$checkout/.cache/trixie-root}
mirror=${UNICHAR_TRIXIE_MIRROR:-http://deb.debian.org/debian}
build_dir=$checkout/.cache/libtorch2-build
# Packages inside the root. libopenblas0-pthread: see scripts/setup.sh (reference BLAS otherwise).
pkgs=(libtorch-dev libgloo-dev libopenblas0-pthread python3-torch python3-numpy nodejs libnode-dev g++ make python3)

# ---- 1. the base root (debootstrap, once) ----
make_base() {
  [ -f "$root/.unichar-base" ] && return 0
  if ! command -v debootstrap >/dev/null 2>&1; then
    if [ "${UNICHAR_SKIP_APT:-0}" = 1 ]; then die "debootstrap is missing (UNICHAR_SKIP_APT=1, not installing): apt-get install debootstrap"; fi
    say "installing debootstrap with apt-get (once)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >/dev/null; } ||
      die "could not install debootstrap with apt-get; install it and rerun"
  fi
  [ -e /usr/share/debootstrap/scripts/trixie ] || die "this debootstrap does not know Debian trixie (no /usr/share/debootstrap/scripts/trixie); install a newer debootstrap"
  # A half-made root (an interrupted debootstrap) is started over: debootstrap cannot resume it.
  unmount_all
  if grep -q " $root/" /proc/mounts; then die "something is still mounted under $root (see /proc/mounts); unmount it before the root is made again"; fi
  rm -rf "$root"
  mkdir -p "$root"
  say "making a Debian trixie root in $root with debootstrap (once; several minutes)"
  local log=$root.debootstrap.log
  if ! debootstrap --variant=minbase trixie "$root" "$mirror" >"$log" 2>&1; then
    tail -20 "$log" >&2
    die "debootstrap failed (full log: $log; the mirror is $mirror, set UNICHAR_TRIXIE_MIRROR for another)"
  fi
  rm -f "$log"
  touch "$root/.unichar-base"
}

# ---- 2. packages inside the root (apt-get there, once per package list) ----
in_root() { chroot "$root" /usr/bin/env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

install_pkgs() {
  local want="${pkgs[*]}"
  [ "$(cat "$root/.unichar-pkgs" 2>/dev/null)" = "$want" ] && return 0
  say "installing ${pkgs[*]} in the trixie root (once; large: libtorch, PyTorch)"
  cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  local log=$root.apt.log
  mount_sys
  if ! in_root sh -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q --no-install-recommends ${want}" >"$log" 2>&1; then
    tail -20 "$log" >&2
    if grep -q 'Unable to locate package\|has no installation candidate' "$log"; then
      die "a package is missing from Debian trixie ($(grep -o "Unable to locate package [^ ]*\|Package [^ ]* has no installation candidate" "$log" | head -3 | tr '\n' ' ')); full log: $log"
    fi
    die "apt-get in the trixie root failed (full log: $log)"
  fi
  rm -f "$log"
  in_root apt-get clean
  echo "$want" > "$root/.unichar-pkgs"
}

# ---- 3. the checkout inside the root, at the same absolute path ----
mounts=()
mount_at() { # mount_at <host path> <path inside the root> [opts]
  local target=$root$2
  mountpoint -q "$target" && return 0
  mkdir -p "$target"
  mount --bind "$1" "$target"
  mounts=("$target" "${mounts[@]}")
  # private: on hosts with shared mount propagation (systemd's default) a mount inside this one,
  # such as the 2.6 build over native/build, would otherwise show outside the root too
  mount --make-private "$target"
}
mount_sys() {
  mountpoint -q "$root/proc" || { mount -t proc proc "$root/proc"; mounts=("$root/proc" "${mounts[@]}"); }
  mount_at /dev /dev
  mountpoint -q "$root/dev/shm" || mount_at /dev/shm /dev/shm
}
unmount_all() {
  local m
  for m in "${mounts[@]}"; do umount -l "$m" 2>/dev/null || true; done
  mounts=()
}
trap unmount_all EXIT

mount_checkout() {
  mount_sys
  mount_at "$checkout" "$checkout"
  # A worktree's node_modules may be a link to another checkout's: mount that folder too.
  if [ -L node_modules ]; then
    local nm
    nm=$(readlink -f node_modules)
    case "$nm" in "$checkout"/*) ;; *) mount_at "$nm" "$nm" ;; esac
  fi
  mkdir -p "$build_dir" native/build
  mount_at "$build_dir" "$checkout/native/build"
}

# ---- 4. inside the root: build against libtorch 2.6, then the action ----
inside() {
  local nm
  [ -d node_modules ] || die "node_modules is missing: run npm run setup (outside the root) first"
  say "inside Debian trixie: node $(node --version), libtorch $(dpkg-query -W -f='${Version}' libtorch-dev)"
  # `node` runs what the caller compiled (bench:libtorch compiles dist/ before it starts)
  [ "$action" = node ] || node node_modules/typescript/bin/tsc -p tsconfig.json
  local addon=native/build/Release/unicharacter_torch.node
  if [ ! -f "$addon" ] || [ -n "$(find native/src native/binding.gyp native/config.cjs -newer "$addon" -print -quit)" ]; then
    say "building the native addon against libtorch 2.6 in .cache/libtorch2-build (a few minutes)"
    local t0=$SECONDS
    # libnode-dev carries the headers and common.gypi (/usr/include/node): node-gyp needs no download.
    # configure + build, not rebuild: native/build is a mount point here and cannot be removed.
    local gyp="node ../node_modules/node-gyp/bin/node-gyp.js"
    (cd native && $gyp configure --nodedir=/usr --loglevel=error && $gyp build --nodedir=/usr -j "$(nproc)" --loglevel=error) \
      >.cache/libtorch2-build.log 2>&1 || { tail -40 .cache/libtorch2-build.log; die "native build against libtorch 2.6 failed (full log: .cache/libtorch2-build.log)"; }
    say "addon built in $((SECONDS - t0)) s"
  fi
  case "$action" in
    test)
      local t0=$SECONDS
      node scripts/run-tests.mjs dist/test/torch dist/test/nn dist/test/model
      say "engine, nn and model tests passed on libtorch 2.6 in $((SECONDS - t0)) s" ;;
    bench)
      BENCH_NO_README=1 node dist/bench/engine.bench.js
      BENCH_NO_README=1 BENCH_LEAK_STEPS=${BENCH_LEAK_STEPS:-200} node dist/bench/train.bench.js ;;
    node)
      shift
      node "$@" ;;
    gen-ops)
      node dist/scripts/gen-ops.js
      node node_modules/typescript/bin/tsc -p tsconfig.json ;;
    shell)
      bash -i ;;
  esac
}

if [ "${UNICHAR_IN_TRIXIE:-0}" = 1 ]; then inside "$@"; exit 0; fi

[ "$(id -u)" = 0 ] || die "making and entering the trixie root needs root (debootstrap, chroot, mount); run as root"
make_base
install_pkgs
[ "$action" = root ] && { say "trixie root ready: $root"; exit 0; }
mount_checkout
# The same path inside, so node_modules links, dist/ and the tests' paths all resolve; the
# benchmarks' and thread settings pass through (in_root starts from an empty environment).
pass=()
while IFS='=' read -r name _; do
  case "$name" in BENCH_*|OMP_*|OPENBLAS_*|MKL_*|UNICHAR_*|GLOO_*) pass+=("$name=${!name}") ;; esac
done < <(env)
in_root env "${pass[@]}" UNICHAR_IN_TRIXIE=1 bash -c 'cd "$1" && shift && exec bash scripts/libtorch2.sh "$@"' _ "$checkout" "$@"
