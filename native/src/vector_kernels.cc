// Batch-1 kernels for text decoding, float32 or bfloat16 weights, float32 arithmetic. At batch 1 every weight is read once per token, so
// decoding speed is the speed of streaming the weights from memory. OpenBLAS's sgemv (what
// at::linear reaches for one row) streams a matrix that is not in cache at about half the rate
// of a plain row-by-row dot product (bench/README.md, model section, has the numbers); these
// loops keep each row a contiguous stream that the hardware prefetcher follows. bfloat16 weights
// halve the bytes per token; each is widened to float32 as it is read (exact), and all sums,
// the softmax and the outputs stay float32.
//
// The loops are written so the compiler can vectorise them without reassociating float sums:
// 16 independent lane sums per row, added in lane order at the end. The same machine always
// gives the same bits; they can differ from ATen's sums in the last places.
#include "vector_kernels.h"
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

// One build for every x86-64 machine: GCC compiles each kernel for AVX-512, AVX2 and the
// baseline and picks one when the addon loads.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define UC_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define UC_MULTIVERSION
#endif

namespace uc::kernels {
namespace {

constexpr int kLanes = 16;

inline float wide(float v) { return v; }
inline float wide(c10::BFloat16 v) { return static_cast<float>(v); }

template <class T>
inline float dot(const T* a, const float* b, int64_t n) {
  const int64_t body = n - n % kLanes;
  float lanes[kLanes] = {0.f};
  for (int64_t i = 0; i < body; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] += wide(a[i + j]) * b[i + j];
  }
  float s = 0.f;
  for (int j = 0; j < kLanes; ++j) s += lanes[j];
  for (int64_t i = body; i < n; ++i) s += wide(a[i]) * b[i];
  return s;
}

template <class T>
inline void gemvRows(const T* W, const float* x, const T* bias, float* y, int64_t begin, int64_t end, int64_t cols) {
  for (int64_t r = begin; r < end; ++r) {
    const float s = dot(W + r * cols, x, cols);
    y[r] = bias ? s + wide(bias[r]) : s;
  }
}

// Four dots of one weight row against four vectors, each summed exactly as dot() sums it (same
// lanes, same order), so a batched row equals its batch-1 result bit for bit; the four
// independent accumulators keep the FPU busy while the row is read once.
template <class T>
inline void dot4(const T* a, const float* b0, const float* b1, const float* b2, const float* b3, int64_t n, float* out) {
  const int64_t body = n - n % kLanes;
  float l0[kLanes] = {0.f}, l1[kLanes] = {0.f}, l2[kLanes] = {0.f}, l3[kLanes] = {0.f};
  for (int64_t i = 0; i < body; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) {
      const float w = wide(a[i + j]);
      l0[j] += w * b0[i + j];
      l1[j] += w * b1[i + j];
      l2[j] += w * b2[i + j];
      l3[j] += w * b3[i + j];
    }
  }
  float s[4] = {0.f, 0.f, 0.f, 0.f};
  for (int j = 0; j < kLanes; ++j) {
    s[0] += l0[j];
    s[1] += l1[j];
    s[2] += l2[j];
    s[3] += l3[j];
  }
  for (int64_t i = body; i < n; ++i) {
    const float w = wide(a[i]);
    s[0] += w * b0[i];
    s[1] += w * b1[i];
    s[2] += w * b2[i];
    s[3] += w * b3[i];
  }
  for (int k = 0; k < 4; ++k) out[k] = s[k];
}

// Rows [begin, end) of Y = X W^T (+ bias) for B input rows X [B, cols] -> Y [B, rows]: each weight
// row is read once for all B inputs (in groups of four, the rest one by one).
template <class T>
inline void gemmRows(const T* W, const float* x, const T* bias, float* y, int64_t begin, int64_t end, int64_t rows,
                     int64_t cols, int64_t B) {
  for (int64_t r = begin; r < end; ++r) {
    const T* wr = W + r * cols;
    int64_t b = 0;
    float s[4];
    for (; b + 4 <= B; b += 4) {
      dot4(wr, x + b * cols, x + (b + 1) * cols, x + (b + 2) * cols, x + (b + 3) * cols, cols, s);
      for (int k = 0; k < 4; ++k) y[(b + k) * rows + r] = bias ? s[k] + wide(bias[r]) : s[k];
    }
    for (; b < B; ++b) {
      const float v = dot(wr, x + b * cols, cols);
      y[b * rows + r] = bias ? v + wide(bias[r]) : v;
    }
  }
}

template <class T>
inline void attendHeads(const float* q, const T* keys, const T* values, float* out, int64_t hBegin, int64_t hEnd,
                        int64_t group, int64_t capacity, int64_t n, int64_t d) {
  std::vector<float> p(static_cast<size_t>(n));
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  for (int64_t h = hBegin; h < hEnd; ++h) {
    const float* qh = q + h * d;
    const int64_t kv = h / group;
    const T* K = keys + kv * capacity * d;
    const T* V = values + kv * capacity * d;
    float top = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < n; ++j) {
      p[j] = dot(K + j * d, qh, d) * scale;
      top = std::max(top, p[j]);
    }
    float total = 0.f;
    for (int64_t j = 0; j < n; ++j) {
      p[j] = std::exp(p[j] - top);
      total += p[j];
    }
    float* o = out + h * d;
    std::fill(o, o + d, 0.f);
    for (int64_t j = 0; j < n; ++j) {
      const float w = p[j] / total;
      const T* vj = V + j * d;
      for (int64_t i = 0; i < d; ++i) o[i] += w * wide(vj[i]);
    }
  }
}

// The machine-specific builds: one per weight type (GCC's clones cannot be templates).
UC_MULTIVERSION
void gemvRowsF32(const float* W, const float* x, const float* bias, float* y, int64_t b, int64_t e, int64_t cols) {
  gemvRows(W, x, bias, y, b, e, cols);
}
UC_MULTIVERSION
void gemvRowsBF16(const c10::BFloat16* W, const float* x, const c10::BFloat16* bias, float* y, int64_t b, int64_t e,
                  int64_t cols) {
  gemvRows(W, x, bias, y, b, e, cols);
}
UC_MULTIVERSION
void gemmRowsF32(const float* W, const float* x, const float* bias, float* y, int64_t b, int64_t e, int64_t rows,
                 int64_t cols, int64_t B) {
  gemmRows(W, x, bias, y, b, e, rows, cols, B);
}
UC_MULTIVERSION
void gemmRowsBF16(const c10::BFloat16* W, const float* x, const c10::BFloat16* bias, float* y, int64_t b, int64_t e,
                  int64_t rows, int64_t cols, int64_t B) {
  gemmRows(W, x, bias, y, b, e, rows, cols, B);
}
UC_MULTIVERSION
void attendHeadsF32(const float* q, const float* keys, const float* values, float* out, int64_t b, int64_t e,
                    int64_t group, int64_t capacity, int64_t n, int64_t d) {
  attendHeads(q, keys, values, out, b, e, group, capacity, n, d);
}
UC_MULTIVERSION
void attendHeadsBF16(const float* q, const c10::BFloat16* keys, const c10::BFloat16* values, float* out, int64_t b,
                     int64_t e, int64_t group, int64_t capacity, int64_t n, int64_t d) {
  attendHeads(q, keys, values, out, b, e, group, capacity, n, d);
}

// Threads only for chunks of at least 1 MiB of weights: waking a pool thread costs more than a
// small matrix takes (the tiny model's matrices all run on the calling thread).
template <class T, class Rows>
void gemvParallel(Rows rows, const T* W, const float* x, const T* bias, float* y, int64_t n, int64_t cols) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(cols * int64_t{sizeof(T)}, 1));
  at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) { rows(W, x, bias, y, b, e, cols); });
}

// As gemvParallel, the grain counting the B rows' work on each weight row.
template <class T, class Rows>
void gemmParallel(Rows rows, const T* W, const float* x, const T* bias, float* y, int64_t B, int64_t n, int64_t cols) {
  const int64_t work = std::max<int64_t>(cols * int64_t{sizeof(T)} * std::max<int64_t>(B, 1), 1);
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / work);
  at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) { rows(W, x, bias, y, b, e, n, cols, B); });
}

template <class T, class Heads>
void attendParallel(Heads heads, const float* q, const T* keys, const T* values, float* out, int64_t H, int64_t Hkv,
                    int64_t capacity, int64_t n, int64_t d) {
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(n * d, 1));
  at::parallel_for(0, H, grain, [&](int64_t b, int64_t e) { heads(q, keys, values, out, b, e, H / Hkv, capacity, n, d); });
}

}  // namespace

void gemv(const float* W, const float* x, const float* bias, float* y, int64_t rows, int64_t cols) {
  gemvParallel(gemvRowsF32, W, x, bias, y, rows, cols);
}
void gemv(const c10::BFloat16* W, const float* x, const c10::BFloat16* bias, float* y, int64_t rows, int64_t cols) {
  gemvParallel(gemvRowsBF16, W, x, bias, y, rows, cols);
}
void gemm(const float* W, const float* x, const float* bias, float* y, int64_t B, int64_t rows, int64_t cols) {
  gemmParallel(gemmRowsF32, W, x, bias, y, B, rows, cols);
}
void gemm(const c10::BFloat16* W, const float* x, const c10::BFloat16* bias, float* y, int64_t B, int64_t rows,
          int64_t cols) {
  gemmParallel(gemmRowsBF16, W, x, bias, y, B, rows, cols);
}
void attendOneQuery(const float* q, const float* keys, const float* values, float* out, int64_t H, int64_t Hkv,
                    int64_t capacity, int64_t n, int64_t d) {
  attendParallel(attendHeadsF32, q, keys, values, out, H, Hkv, capacity, n, d);
}
void attendOneQuery(const float* q, const c10::BFloat16* keys, const c10::BFloat16* values, float* out, int64_t H,
                    int64_t Hkv, int64_t capacity, int64_t n, int64_t d) {
  attendParallel(attendHeadsBF16, q, keys, values, out, H, Hkv, capacity, n, d);
}

}  // namespace uc::kernels
