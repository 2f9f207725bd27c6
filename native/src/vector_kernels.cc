// Batch-1 kernels for text decoding, float32 or bfloat16 weights, float32 arithmetic. At batch 1 every weight is read once per token, so
// decoding speed is the speed of streaming the weights from memory. OpenBLAS's sgemv (what
// at::linear reaches for one row) streams a matrix that is not in cache at about half the rate
// of a plain row-by-row dot product (bench/README.md, model section, has the numbers); these
// loops keep each row a contiguous stream that the hardware prefetcher follows. bfloat16 weights
// halve the bytes per token; each is widened to float32 as it is read (exact), and all sums,
// the softmax and the outputs stay float32.
//
// The loops are written so the compiler can vectorise them without reassociating float sums:
// 16 independent lane sums per row, added as a fixed tree at the end (sumLanes). The batched
// gemm sums each of its rows exactly as gemv sums one, so batching never changes a result; the
// same machine always gives the same bits; they can differ from ATen's sums in the last places.
#include "vector_kernels.h"
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstring>
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

// Every helper below is forced inline: called from a machine-specific build (UC_MULTIVERSION) a
// plain `inline` helper may stay one out-of-line copy compiled for the baseline, and the batched
// gemm then ran its inner loop without AVX (docs/serving.md 9; bench/README.md, "Decode step by batch size").
#if defined(__GNUC__)
#define UC_INLINE inline __attribute__((always_inline))
#else
#define UC_INLINE inline
#endif

inline float wide(float v) { return v; }
inline float wide(c10::BFloat16 v) { return static_cast<float>(v); }

// kLanes floats as one value (GCC/Clang vector extension): one zmm register with AVX-512, two
// ymm with AVX2, four xmm otherwise; lane j of a sum only ever adds elements j, j + 16, ...
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
typedef uint16_t Halves __attribute__((vector_size(kLanes * sizeof(uint16_t))));
typedef uint32_t Words __attribute__((vector_size(kLanes * sizeof(uint32_t))));
typedef float Lanes8 __attribute__((vector_size(8 * sizeof(float))));
typedef float Lanes4 __attribute__((vector_size(4 * sizeof(float))));

// (vectors go by reference: by value they would change the calling convention between builds)
UC_INLINE void load(Lanes& v, const float* p) { std::memcpy(&v, p, sizeof v); }
// bfloat16 is the top half of a float32: widening is a 16-bit shift (exact, as static_cast).
UC_INLINE void load(Lanes& v, const c10::BFloat16* p) {
  Halves h;
  std::memcpy(&h, p, sizeof h);
  const Words w = __builtin_convertvector(h, Words) << 16;
  std::memcpy(&v, &w, sizeof v);
}

// The sum of the 16 lanes as a tree (halves, quarters, pairs): 4 vector adds instead of 15
// dependent scalar ones, which cost as much as the products of a 256-long dot.
UC_INLINE float sumLanes(const Lanes& v) {
  Lanes8 lo, hi;
  std::memcpy(&lo, &v, sizeof lo);
  std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof lo, sizeof hi);
  const Lanes8 s8 = lo + hi;
  Lanes4 a, b;
  std::memcpy(&a, &s8, sizeof a);
  std::memcpy(&b, reinterpret_cast<const char*>(&s8) + sizeof a, sizeof b);
  const Lanes4 s4 = a + b;
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// out[r * C + c] = a_r . b_c over n for R rows a_r = a + r * lda and C vectors b_c = b + c * ldb.
// Every dot is summed the same way whatever R and C are (kLanes lane sums in element order, the
// lanes added by sumLanes, then the tail in order), so a batched row equals its batch-1 result bit for bit;
// the R * C independent sums keep the FPU busy while each row of a is read once for C vectors.
template <int R, int C, class T>
UC_INLINE void dotBlock(const T* a, int64_t lda, const float* b, int64_t ldb, int64_t n, float* out) {
  const int64_t body = n - n % kLanes;
  Lanes acc[R][C];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < C; ++c) acc[r][c] = Lanes{};
  for (int64_t i = 0; i < body; i += kLanes) {
    Lanes x[C];
    for (int c = 0; c < C; ++c) load(x[c], b + c * ldb + i);
    for (int r = 0; r < R; ++r) {
      Lanes w;
      load(w, a + r * lda + i);
      for (int c = 0; c < C; ++c) acc[r][c] += w * x[c];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float s = sumLanes(acc[r][c]);
      for (int64_t i = body; i < n; ++i) s += wide(a[r * lda + i]) * b[c * ldb + i];
      out[r * C + c] = s;
    }
  }
}

template <class T>
UC_INLINE float dot(const T* a, const float* b, int64_t n) {
  float s;
  dotBlock<1, 1>(a, 0, b, 0, n, &s);
  return s;
}

template <class T>
UC_INLINE void gemvRows(const T* W, const float* x, const T* bias, float* y, int64_t begin, int64_t end, int64_t cols) {
  for (int64_t r = begin; r < end; ++r) {
    const float s = dot(W + r * cols, x, cols);
    y[r] = bias ? s + wide(bias[r]) : s;
  }
}

// Y[b, r..r+R) for inputs b0..b0+C of X [B, cols] (Y [B, rows]), bias added after the sum.
template <int R, int C, class T>
UC_INLINE void gemmTile(const T* W, const float* x, const T* bias, float* y, int64_t r, int64_t b0, int64_t rows,
                        int64_t cols) {
  float s[R * C];
  dotBlock<R, C>(W + r * cols, cols, x + b0 * cols, cols, cols, s);
  for (int k = 0; k < R; ++k) {
    for (int c = 0; c < C; ++c) y[(b0 + c) * rows + r + k] = bias ? s[k * C + c] + wide(bias[r + k]) : s[k * C + c];
  }
}

// R weight rows from r against all B inputs: four at a time, then the rest together.
template <int R, class T>
UC_INLINE void gemmRowBlock(const T* W, const float* x, const T* bias, float* y, int64_t r, int64_t rows, int64_t cols,
                            int64_t B) {
  int64_t b = 0;
  for (; b + 4 <= B; b += 4) gemmTile<R, 4>(W, x, bias, y, r, b, rows, cols);
  switch (B - b) {
    case 3: gemmTile<R, 3>(W, x, bias, y, r, b, rows, cols); break;
    case 2: gemmTile<R, 2>(W, x, bias, y, r, b, rows, cols); break;
    case 1: gemmTile<R, 1>(W, x, bias, y, r, b, rows, cols); break;
    default: break;
  }
}

// Rows [begin, end) of Y = X W^T (+ bias) for B input rows X [B, cols] -> Y [B, rows]: each weight
// row is read once for all B inputs, in tiles of R weight rows by 4 inputs. R = 2 needs 8 lane
// sums in registers (AVX-512's 32 registers hold them; AVX2's 16 do not), R = 1 needs 4.
template <int R, class T>
UC_INLINE void gemmRows(const T* W, const float* x, const T* bias, float* y, int64_t begin, int64_t end, int64_t rows,
                        int64_t cols, int64_t B) {
  int64_t r = begin;
  for (; r + R <= end; r += R) gemmRowBlock<R>(W, x, bias, y, r, rows, cols, B);
  for (; r < end; ++r) gemmRowBlock<1>(W, x, bias, y, r, rows, cols, B);
}

// o_g[i] = sum over j in order of w_g[j] * V[j, i] for G heads g sharing the values V [n, d]:
// each value row is read once for the G heads, and 32 columns at a time are summed in registers
// (2G independent chains), not through o in memory, where each key's add waited for the last store.
template <int G, class T>
UC_INLINE void weightedSum(const float* const* w, const T* V, float* const* o, int64_t n, int64_t d) {
  int64_t i = 0;
  for (; i + 2 * kLanes <= d; i += 2 * kLanes) {
    Lanes a[G][2];
    for (int g = 0; g < G; ++g) a[g][0] = a[g][1] = Lanes{};
    for (int64_t j = 0; j < n; ++j) {
      Lanes v0, v1;
      load(v0, V + j * d + i);
      load(v1, V + j * d + i + kLanes);
      for (int g = 0; g < G; ++g) {
        a[g][0] += w[g][j] * v0;
        a[g][1] += w[g][j] * v1;
      }
    }
    for (int g = 0; g < G; ++g) {
      std::memcpy(o[g] + i, &a[g][0], sizeof(Lanes));
      std::memcpy(o[g] + i + kLanes, &a[g][1], sizeof(Lanes));
    }
  }
  for (; i + kLanes <= d; i += kLanes) {
    Lanes a[G];
    for (int g = 0; g < G; ++g) a[g] = Lanes{};
    for (int64_t j = 0; j < n; ++j) {
      Lanes v0;
      load(v0, V + j * d + i);
      for (int g = 0; g < G; ++g) a[g] += w[g][j] * v0;
    }
    for (int g = 0; g < G; ++g) std::memcpy(o[g] + i, &a[g], sizeof(Lanes));
  }
  for (; i < d; ++i) {
    for (int g = 0; g < G; ++g) {
      float a = 0.f;
      for (int64_t j = 0; j < n; ++j) a += w[g][j] * wide(V[j * d + i]);
      o[g][i] = a;
    }
  }
}

// 2^n for whole n in [-126, 127] (held as floats), built in the exponent bits.
UC_INLINE float pow2(float n) {
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}
// (the lanes' version scales x in place: vectors go by reference, see load)
UC_INLINE void scaleByPow2(Lanes& x, const Lanes& n) {
  typedef int32_t Ints __attribute__((vector_size(kLanes * sizeof(int32_t))));
  const Ints bits = (__builtin_convertvector(n, Ints) + 127) << 23;
  Lanes v;
  std::memcpy(&v, &bits, sizeof v);
  x *= v;
}
UC_INLINE void scaleByPow2(float& x, float n) { x *= pow2(n); }

// x <- e^x for x <= 0 (softmax's exp(s - max)), for a float or 16 lanes with the same operations:
// x = n ln2 + r, |r| <= ln2 / 2, e^r by Cephes' expf polynomial (about 1 ulp), times 2^n. Inputs
// below -87 give e^-87 (~1.6e-38) instead of less: nothing next to the max's e^0 = 1. Vectorised,
// so the 16 exps of a chunk cost about one scalar std::exp.
template <class V>
UC_INLINE void expNonPositive(V& x) {
  const V lo = V{} - 87.f;
  x = x < lo ? lo : x;
  const V magic = V{} + 12582912.f;  // 1.5 * 2^23: adding and subtracting it rounds to a whole number
  const V n = (x * 1.44269504088896341f + magic) - magic;
  const V r = (x - n * 0.693359375f) - n * -2.12194440e-4f;
  V p = V{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  x = p * r * r + r + 1.f;
  scaleByPow2(x, n);
}

// softmax in place over n scores: max, exp(s - max) (expNonPositive, 16 at a time), then each
// divided by the sum (lane sums added by sumLanes, then the tail).
UC_INLINE void softmaxInPlace(float* p, int64_t n) {
  const int64_t body = n - n % kLanes;
  float top = -std::numeric_limits<float>::infinity();
  if (body) {
    Lanes m;
    load(m, p);
    for (int64_t j = kLanes; j < body; j += kLanes) {
      Lanes v;
      load(v, p + j);
      m = v > m ? v : m;
    }
    for (int k = 0; k < kLanes; ++k) top = std::max(top, m[k]);
  }
  for (int64_t j = body; j < n; ++j) top = std::max(top, p[j]);
  Lanes sums = Lanes{};
  for (int64_t j = 0; j < body; j += kLanes) {
    Lanes v;
    load(v, p + j);
    v -= top;
    expNonPositive(v);
    std::memcpy(p + j, &v, sizeof v);
    sums += v;
  }
  float total = sumLanes(sums);
  for (int64_t j = body; j < n; ++j) {
    p[j] -= top;
    expNonPositive(p[j]);
    total += p[j];
  }
  for (int64_t j = 0; j < n; ++j) p[j] = p[j] / total;
}

// G query heads from h (consecutive, of one KV head) against its keys and values: each key and
// value row is read once for the G heads; every score and sum is that of one head alone.
template <int G, class T>
UC_INLINE void attendGroup(const float* q, const T* K, const T* V, float* out, int64_t h, int64_t n, int64_t d,
                           float* p) {
  const float scale = 1.f / std::sqrt(static_cast<float>(d));
  for (int64_t j = 0; j < n; ++j) {
    float s[G];
    dotBlock<1, G>(K + j * d, 0, q + h * d, d, d, s);
    for (int g = 0; g < G; ++g) p[g * n + j] = s[g] * scale;
  }
  const float* w[G];
  float* o[G];
  for (int g = 0; g < G; ++g) {
    softmaxInPlace(p + g * n, n);
    w[g] = p + g * n;
    o[g] = out + (h + g) * d;
  }
  weightedSum<G>(w, V, o, n, d);
}

// Query heads [hBegin, hEnd) over the first n rows of their KV heads: two heads of one KV head at
// a time where the group has them (GQA), one otherwise.
template <class T>
UC_INLINE void attendHeads(const float* q, const T* keys, const T* values, float* out, int64_t hBegin, int64_t hEnd,
                           int64_t group, int64_t capacity, int64_t n, int64_t d) {
  // the scores of two heads: grown, never freed per call (a decode step calls this per row and layer)
  thread_local std::vector<float> p;
  if (p.size() < static_cast<size_t>(2 * n)) p.resize(std::max<size_t>(static_cast<size_t>(2 * n), 2 * p.size()));
  for (int64_t h = hBegin; h < hEnd;) {
    const int64_t kv = h / group;
    const T* K = keys + kv * capacity * d;
    const T* V = values + kv * capacity * d;
    if (h + 1 < hEnd && (h + 1) / group == kv) {
      attendGroup<2>(q, K, V, out, h, n, d, p.data());
      h += 2;
    } else {
      attendGroup<1>(q, K, V, out, h, n, d, p.data());
      h += 1;
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
// `pairs`: tiles of two weight rows (only where AVX-512 runs, see gemmRows).
UC_MULTIVERSION
void gemmRowsF32(const float* W, const float* x, const float* bias, float* y, int64_t b, int64_t e, int64_t rows,
                 int64_t cols, int64_t B, bool pairs) {
  if (pairs) gemmRows<2>(W, x, bias, y, b, e, rows, cols, B);
  else gemmRows<1>(W, x, bias, y, b, e, rows, cols, B);
}
UC_MULTIVERSION
void gemmRowsBF16(const c10::BFloat16* W, const float* x, const c10::BFloat16* bias, float* y, int64_t b, int64_t e,
                  int64_t rows, int64_t cols, int64_t B, bool pairs) {
  if (pairs) gemmRows<2>(W, x, bias, y, b, e, rows, cols, B);
  else gemmRows<1>(W, x, bias, y, b, e, rows, cols, B);
}

// Whether the AVX-512 build of the kernels runs (then it is the one UC_MULTIVERSION picks).
bool avx512() {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
#else
  return false;
#endif
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
  const bool pairs = avx512();
  at::parallel_for(0, n, grain, [&](int64_t b, int64_t e) { rows(W, x, bias, y, b, e, n, cols, B, pairs); });
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
