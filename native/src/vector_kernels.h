// Batch-1 kernels for text decoding (mot_decode.cc): one token's matrix-vector products and its
// attention over the cache, for float32 and bfloat16 weights with float32 arithmetic. See
// vector_kernels.cc for why they are not ATen calls.
#pragma once
#include <c10/util/BFloat16.h>
#include <cstdint>

namespace uc::kernels {

// y[r] = W[r, :] . x (+ bias[r] when bias is not null), W row-major [rows, cols]; float sums.
void gemv(const float* W, const float* x, const float* bias, float* y, int64_t rows, int64_t cols);
void gemv(const c10::BFloat16* W, const float* x, const c10::BFloat16* bias, float* y, int64_t rows, int64_t cols);

// Y[b, r] = W[r, :] . X[b, :] (+ bias[r]) for B rows X [B, cols] -> Y [B, rows]: each weight row
// is read once for every row of X; each Y[b, :] equals gemv of X[b, :] bit for bit.
void gemm(const float* W, const float* x, const float* bias, float* y, int64_t B, int64_t rows, int64_t cols);
void gemm(const c10::BFloat16* W, const float* x, const c10::BFloat16* bias, float* y, int64_t B, int64_t rows,
          int64_t cols);

// One query per head against the first n rows of a [Hkv, capacity, d] key and value cache; query
// head h uses kv head h / (H / Hkv) (GQA). q, out: [H, d]. softmax(q k^T / sqrt(d)) v per head.
void attendOneQuery(const float* q, const float* keys, const float* values, float* out, int64_t H, int64_t Hkv,
                    int64_t capacity, int64_t n, int64_t d);
void attendOneQuery(const float* q, const c10::BFloat16* keys, const c10::BFloat16* values, float* out, int64_t H,
                    int64_t Hkv, int64_t capacity, int64_t n, int64_t d);

}  // namespace uc::kernels
