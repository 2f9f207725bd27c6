// C++ baseline for `npm run bench:engine`: fp32 NxN matmul through libtorch directly (no
// binding), timed the same way as the TypeScript side of bench/engine.bench.ts.
// Built by the bench at run time: g++ -O2 -std=c++17 ... -ltorch -ltorch_cpu -lc10.
//
// Usage: matmul_baseline <n> <threads>
// A small line protocol, so that the bench can interleave repetitions with the TS side:
// each input line "<iters>" runs at::matmul(a, b) iters times (the result freed each time, as
// the TS side disposes it) and answers one line with the seconds per call; EOF ends it.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <n> <threads>\n", argv[0]);
    return 2;
  }
  const int64_t n = std::atoll(argv[1]);
  at::set_num_threads(std::atoi(argv[2]));
  at::manual_seed(0);
  at::Tensor a = at::randn({n, n});
  at::Tensor b = at::randn({n, n});
  std::printf("ready %d\n", at::get_num_threads());
  std::fflush(stdout);
  using clock = std::chrono::steady_clock;
  std::string line;
  while (std::getline(std::cin, line)) {
    const long iters = std::max(1L, std::atol(line.c_str()));
    auto t0 = clock::now();
    for (long i = 0; i < iters; ++i) {
      at::Tensor c = at::matmul(a, b);
    }
    const double s = std::chrono::duration<double>(clock::now() - t0).count() / iters;
    std::printf("%.9g\n", s);
    std::fflush(stdout);
  }
  return 0;
}
