#!/usr/bin/env bash
# The device check: one prepared run on a machine with an NVIDIA GPU and a Python PyTorch 2.x
# but no Node.js and no network (docs/planner.md 5; results go to bench/README.md).
#
#   bash scripts/device-check.sh prepare   # here (with Node and a build): writes .device-check/
#                                          # (a compressed Node binary, the N-API headers, the
#                                          # compiled JS the check runs), under 64 MiB
#   bash scripts/device-check.sh run [--cpu-dry]
#                                          # there: builds the addon against that PyTorch
#                                          # (LIBTORCH), runs the engine and model tests, one SFT
#                                          # and one LoRA step of bagel-7b-mot (scripts/device-step.ts),
#                                          # and writes one markdown summary to $OUT (or .device-check/)
#
# --cpu-dry runs the same stages on this CPU machine with Debian's libtorch (no LIBTORCH), the
# tiny preset and a short test list: how every part but the GPU itself is tested
# (DEVICE_CHECK_BUILD_TIMEOUT raises the build's 240 s limit on a slow machine).
set -euo pipefail
cd "$(dirname "$0")/.."
DC=.device-check
mode=${1:-}

prepare() {
  [ -f dist/scripts/device-step.js ] || { echo "device-check prepare: build first (npx tsc -p tsconfig.json)" >&2; exit 1; }
  rm -rf "$DC" && mkdir -p "$DC/include/node" "$DC/include/node-addon-api"
  gzip -6 -c "$(command -v node)" > "$DC/node.gz"
  local hdr
  hdr=$(dirname "$(node -p "require.resolve('node-addon-api/napi.h')" 2>/dev/null || echo node_modules/node-addon-api/napi.h)")
  cp "$hdr"/napi.h "$hdr"/napi-inl.h "$hdr"/napi-inl.deprecated.h "$DC/include/node-addon-api/"
  local nodeinc=/usr/include/node
  [ -f "$nodeinc/node_api.h" ] || nodeinc="$(dirname "$(dirname "$(command -v node)")")/include/node"
  cp "$nodeinc"/node_api.h "$nodeinc"/node_api_types.h "$nodeinc"/js_native_api.h "$nodeinc"/js_native_api_types.h "$DC/include/node/"
  # only what the check runs: the engine, nn, model and plan layers, their tests and the step script
  # (src/plan loads without src/train: test/plan/cli.test.ts)
  tar -czf "$DC/dist.tar.gz" dist/src/torch dist/src/nn dist/src/model dist/src/plan \
    dist/test/torch dist/test/model dist/test/plan/measured.test.js dist/scripts/device-step.js dist/scripts/docs-keys.js
  node -p "process.version" > "$DC/node-version"
  local size
  size=$(du -sb "$DC" | cut -f1)
  echo "device-check prepare: $DC holds $((size / 1048576)) MiB"
  [ "$size" -lt $((64 * 1048576)) ] || { echo "device-check prepare: over the 64 MiB the device tool carries" >&2; exit 1; }
}

stage() { echo "### $1" >> "$SUMMARY"; echo "== $1" >&2; }

build_addon() {
  local cflags includes libs defines
  includes=$($NODE native/config.cjs include)
  libs=$($NODE native/config.cjs libs)
  defines=$($NODE native/config.cjs defines)
  cflags="-std=c++17 -O2 -fPIC -fexceptions -frtti -ftls-model=initial-exec -Wno-deprecated-declarations -DNAPI_VERSION=8 -DNAPI_CPP_EXCEPTIONS"
  for d in $defines; do cflags="$cflags -D$d"; done
  for i in $includes; do cflags="$cflags -I$i"; done
  cflags="$cflags -I$DC/include/node -I$DC/include/node-addon-api"
  mkdir -p "$DC/obj" native/build/Release
  # one compiler per source file, in parallel, then one link
  ls native/src/*.cc | xargs -P "$(nproc)" -I{} sh -c "o=$DC/obj/\$(basename {} .cc).o; [ \$o -nt {} ] || g++ $cflags -c {} -o \$o"
  g++ -shared -o native/build/Release/unicharacter_torch.node "$DC"/obj/*.o $libs
}

run() {
  local dry=0
  [ "${1:-}" = "--cpu-dry" ] && dry=1
  local out=${OUT:-$DC}
  SUMMARY="$out/device-check.md"
  mkdir -p "$out"
  local t0=$SECONDS
  command -v g++ > /dev/null || { echo "device-check: g++ is needed to build the addon" >&2; exit 1; }
  mkdir -p "$DC/bin" && gzip -dc "$DC/node.gz" > "$DC/bin/node" && chmod +x "$DC/bin/node"
  NODE=$PWD/$DC/bin/node
  tar -xzf "$DC/dist.tar.gz"
  echo "# Device check ($(date -u +%Y-%m-%dT%H:%M:%SZ))" > "$SUMMARY"
  {
    echo
    echo "- machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), Node $($NODE -p process.version)"
  } >> "$SUMMARY"
  local memory=80GiB
  if [ $dry = 0 ]; then
    export LIBTORCH
    LIBTORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
    if [ "$(python3 -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')" = 0 ]; then export LIBTORCH_CXX11_ABI=0; fi
    echo "- GPU: $(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1); PyTorch $(python3 -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)')" >> "$SUMMARY"
    memory="$(nvidia-smi --query-gpu=memory.total --format=csv,noheader,nounits | head -1)MiB"
  fi
  stage "Build of the addon"
  if timeout "${DEVICE_CHECK_BUILD_TIMEOUT:-240}" bash -c "$(declare -f build_addon); DC=$DC NODE=$NODE build_addon" > "$DC/build.log" 2>&1; then
    echo "built in $((SECONDS - t0)) s; \`engine\`: $($NODE -e "import('./dist/src/torch/index.js').then((t) => console.log(t.version(), 'CUDA', t.cuda.isAvailable() ? t.cuda.deviceCount() + ' device(s)' : 'not available'))")" >> "$SUMMARY"
  else
    { echo '```'; tail -20 "$DC/build.log"; echo '```'; } >> "$SUMMARY"
    cat "$SUMMARY"
    exit 1
  fi
  stage "Engine and model tests"
  # Tests that take a device (test/torch/device.ts) run on UNICHAR_TEST_DEVICE: cuda here, the
  # rest on the CPU. safetensors-hostile needs src/data (npm packages the check does not carry).
  local tests test_device=cuda
  tests="$(ls dist/test/torch/*.test.js dist/test/model/*.test.js | grep -v safetensors-hostile) dist/test/plan/measured.test.js"
  if [ $dry = 1 ]; then
    test_device=cpu
    tests="dist/test/torch/allocator-stats.test.js dist/test/torch/tensor.test.js dist/test/torch/device.test.js dist/test/model/device.test.js"
  fi
  echo "UNICHAR_TEST_DEVICE=$test_device" >> "$SUMMARY"
  # shellcheck disable=SC2086
  UNICHAR_TEST_DEVICE=$test_device timeout 200 "$NODE" scripts/run-tests.mjs $tests > "$DC/tests.log" 2>&1 || true
  { echo '```'; grep -E '^# (tests|pass|fail|cancelled|skipped)' "$DC/tests.log" || echo "no summary (timed out?)"; grep -E '^not ok' "$DC/tests.log" | head -20 || true; echo '```'; } >> "$SUMMARY"
  stage "Training steps"
  local step_args="--device cuda --memory $memory"
  [ $dry = 1 ] && step_args="--device cpu --memory 16GiB --quick"
  # shellcheck disable=SC2086
  timeout 240 "$NODE" dist/scripts/device-step.js $step_args >> "$SUMMARY" 2> "$DC/step.log" || { echo "step script failed:"; echo '```'; tail -15 "$DC/step.log"; echo '```'; } >> "$SUMMARY"
  echo >> "$SUMMARY"
  echo "total $((SECONDS - t0)) s" >> "$SUMMARY"
  cat "$SUMMARY"
}

case "$mode" in
  prepare) prepare ;;
  run) shift; run "$@" ;;
  *) echo "usage: bash scripts/device-check.sh prepare | run [--cpu-dry]" >&2; exit 2 ;;
esac
