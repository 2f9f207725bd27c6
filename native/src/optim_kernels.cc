// See optim_kernels.h. Each line below is one libtorch 1.13 CPU kernel of the multi-tensor AdamW
// (src/nn/optim.ts), with the rounding that kernel has (checked element by element against
// libtorch, test/nn/fused-optim.test.ts):
//   mul_(s)             x * s
//   add_(y, alpha)      fma(alpha, y, x)              (vec::fmadd in the vectorised loop)
//   addcmul_(a, b, s)   fma(s * a, b, x)              (x + s * a * b, contracted by the compiler)
//   sqrt, div_(s), add_(s)  one rounding each
//   addcdiv_(a, b, s)   x + (s * a) / b
// This file is built with -ffp-contract=off: any other fused multiply-add than the two written
// as __builtin_fmaf would change the bits. __builtin_ (not std::) forms, so they inline and
// vectorise in every clone.
#include "optim_kernels.h"

// One build for every x86-64 machine: GCC compiles each loop for x86-64-v4 (AVX-512), v3 (AVX2 +
// FMA) and the baseline (where fmaf is a libm call: the same result, slower) and picks one at load.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define UC_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define UC_MULTIVERSION
#endif

namespace uc::kernels {

UC_MULTIVERSION
void adamwSpan(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
               const AdamWConstants& c) {
  const AdamWConstants k = c;  // by value: the loop must not reload them through a pointer
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i] * k.gradScale;
    const float pi = p[i] * k.decay;
    const float mi = __builtin_fmaf(k.gradWeight1, gi, m[i] * k.beta1);
    const float vi = __builtin_fmaf(k.gradWeight2 * gi, gi, v[i] * k.beta2);
    const float denom = __builtin_sqrtf(vi) / k.biasCorrection2Sqrt + k.eps;
    p[i] = pi + (k.negStepSize * mi) / denom;
    m[i] = mi;
    v[i] = vi;
  }
}

UC_MULTIVERSION
void scaleSpan(float* __restrict x, int64_t n, float scale) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * scale;
}

}  // namespace uc::kernels
