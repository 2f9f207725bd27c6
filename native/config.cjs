// Prints build settings for binding.gyp: where libtorch lives and what to link.
// LIBTORCH=<dir> points at an unpacked official libtorch or the torch/ folder of a
// Python PyTorch install; otherwise Debian's libtorch-dev paths under /usr are used.
'use strict';
const fs = require('fs');
const path = require('path');

const root = process.env.LIBTORCH ? path.resolve(process.env.LIBTORCH) : null;
const what = process.argv[2];

function libDir() {
  return root ? path.join(root, 'lib') : '/usr/lib/x86_64-linux-gnu';
}
function hasLib(name) {
  return fs.existsSync(path.join(libDir(), `lib${name}.so`));
}
const cuda = hasLib('torch_cuda');

if (what === 'include') {
  const inc = root ? path.join(root, 'include') : '/usr/include';
  console.log([inc, path.join(inc, 'torch/csrc/api/include')].join(' '));
} else if (what === 'libs') {
  const libs = [`-L${libDir()}`, '-ltorch', '-ltorch_cpu', '-lc10'];
  if (cuda) libs.push('-ltorch_cuda', '-lc10_cuda');
  if (root) libs.push(`-Wl,-rpath,${libDir()}`);
  if (!root || hasLib('gloo')) libs.push('-lgloo');
  console.log(libs.join(' '));
} else if (what === 'defines') {
  const defs = ['USE_DISTRIBUTED', 'USE_C10D_GLOO'];
  if (cuda) defs.push('UNICHAR_CUDA', 'USE_C10D_NCCL');
  // Official libtorch archives are built with the pre-C++11 ABI; Python wheels too.
  if (root && process.env.LIBTORCH_CXX11_ABI === '0') defs.push('_GLIBCXX_USE_CXX11_ABI=0');
  console.log(defs.join(' '));
} else {
  console.error('usage: node config.cjs include|libs|defines');
  process.exit(2);
}
