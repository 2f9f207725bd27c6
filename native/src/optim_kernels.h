// Element loops of the fused optimizer step (fused_optim.cc): AdamW and a gradient scale over one
// contiguous float32 span. Compiled apart from the rest of the addon (binding.gyp target
// uc_optim_kernels) with -ffp-contract=off, so every rounding is the one written here and each
// element gets the same bits as the chain of libtorch operators it replaces (docs/engine.md,
// "Fused optimizer step").
#pragma once
#include <cstdint>

namespace uc::kernels {

// The float32 constants of one AdamW step, each what the libtorch operator it replaces rounds
// its Scalar argument to (the double arithmetic is done in TS, src/nn/optim.ts).
struct AdamWConstants {
  float gradScale;            // the clip coefficient (1: none)
  float decay;                // 1 - lr * weight_decay
  float beta1, gradWeight1;   // beta1, 1 - beta1
  float beta2, gradWeight2;   // beta2, 1 - beta2
  float biasCorrection2Sqrt;  // sqrt(1 - beta2^t)
  float eps;
  float negStepSize;          // -lr / (1 - beta1^t)
};

// For i in [0, n): g = g[i] * scale;  p *= decay;  m = m * beta1 + (1 - beta1) g;
// v = v * beta2 + (1 - beta2) g g;  p += -step * m / (sqrt(v) / bc2 + eps); g[] is only read.
void adamwSpan(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConstants& c);

// x[i] *= scale for i in [0, n) (torch's mul_ by a Scalar).
void scaleSpan(float* x, int64_t n, float scale);

}  // namespace uc::kernels
