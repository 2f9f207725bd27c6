// The decoder's one-token step on the understanding expert, in C++: the hot loop of text
// decoding (src/model/mot.ts, Qwen2MoTModel.forward's fast path). At batch 1 a token is ~300
// small operators when the TS layers run it, and the time between two uses of a weight matrix
// decides whether it is still in cache (see bench/README.md, model section). For float32 and
// bfloat16 models on the CPU the layers run as plain loops over vector_kernels (float32
// arithmetic throughout); any other dtype or device takes the same ATen operations as the TS
// layers, in the same order.
#include "common.h"
#include "vector_kernels.h"
#include "decode_profile.h"
#include <torch/version.h>
#include <cmath>
#include <algorithm>
#include <map>
#include <memory>
#include <vector>

namespace {

// RMSNorm as src/nn/norm.ts computes it: w * (x * rsqrt(mean(x^2, -1) + eps)), in float32.
at::Tensor rmsNorm(const at::Tensor& x, const at::Tensor& w, double eps) {
  at::Tensor h = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  at::Tensor y = h.mul(h.pow(2).mean({-1}, true).add(eps).rsqrt());
  if (x.scalar_type() != at::kFloat) y = y.to(x.scalar_type());
  return w.mul(y);
}

// x * cos + rotate_half(x) * sin with rotate_half(x) = [-x2, x1] (applyRope in mot.ts).
at::Tensor rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  int64_t d = x.size(-1);
  auto parts = x.split(d / 2, -1);
  at::Tensor rot = at::cat({parts[1].neg(), parts[0]}, -1);
  // the tables are made on the CPU in float32 (ropeRow): to x's device and dtype (no-ops when equal)
  at::Tensor c = cos.to(x.device(), x.scalar_type());
  at::Tensor s = sin.to(x.device(), x.scalar_type());
  return x.mul(c).add(rot.mul(s));
}

// Plain loops for the small per-token pieces: each replaces 3-6 ATen calls of a few µs each.
// Sums run in float in index order, so results can differ from ATen's vectorised sums in the
// last bits (the test allows 1e-5).
bool plain(const at::Tensor& t, at::ScalarType dtype) {
  return t.scalar_type() == dtype && t.device().is_cpu() && t.is_contiguous();
}

inline float wide(float v) { return v; }
inline float wide(c10::BFloat16 v) { return static_cast<float>(v); }

// rows of `dim` in place: x <- w * (x * rsqrt(mean(x^2) + eps))
template <class T>
void rmsNormRows(float* x, const T* w, int64_t rows, int64_t dim, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * dim;
    float ss = 0.f;
    for (int64_t i = 0; i < dim; ++i) ss += row[i] * row[i];
    const float inv = 1.f / std::sqrt(ss / static_cast<float>(dim) + static_cast<float>(eps));
    for (int64_t i = 0; i < dim; ++i) row[i] = wide(w[i]) * (row[i] * inv);
  }
}

// rows of `dim` in place: x <- x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]
void ropeRows(float* x, const float* cos, const float* sin, int64_t rows, int64_t dim) {
  const int64_t half = dim / 2;
  thread_local std::vector<float> tmp;  // kept: this runs twice per row and layer
  tmp.resize(dim);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * dim;
    for (int64_t i = 0; i < dim; ++i) tmp[i] = row[i];
    for (int64_t i = 0; i < half; ++i) row[i] = tmp[i] * cos[i] + (-tmp[i + half]) * sin[i];
    for (int64_t i = half; i < dim; ++i) row[i] = tmp[i] * cos[i] + tmp[i - half] * sin[i];
  }
}

// cos and sin [1, d] of one position, exactly as ropeTables in mot.ts computes them.
std::pair<at::Tensor, at::Tensor> ropeRow(int64_t position, int64_t d, double theta) {
  // inv_freq depends only on (d, theta): computed once per thread, not per token
  thread_local std::map<std::pair<int64_t, double>, at::Tensor> invFreqs;
  at::Tensor& invFreq = invFreqs[{d, theta}];
  if (!invFreq.defined()) invFreq = at::arange(0, d, 2, at::kLong).to(at::kFloat).div(d).mul(std::log(theta)).neg().exp();
  at::Tensor pos = at::full({1}, position, at::kLong).to(at::kFloat);
  at::Tensor freqs = pos.unsqueeze(1).mul(invFreq.unsqueeze(0));
  at::Tensor emb = at::cat({freqs, freqs}, -1);
  return {emb.cos(), emb.sin()};
}

// ropeRow's cos and sin kept by position (the same bits, computed once): a batched step asks
// for B positions, nearly all asked for before by this row or another, and ropeRow is ~8 ATen
// calls. Rows live in blocks of kRopeBlock positions, so a pointer stays valid as the table grows.
constexpr int64_t kRopeBlock = 256;
struct RopeTable {
  std::vector<std::unique_ptr<float[]>> blocks;  // per position: d cos, then d sin
  std::vector<bool> have;
};

// [2d] floats at `position`: cos [0, d), sin [d, 2d); valid for the thread's lifetime.
const float* ropeAt(int64_t position, int64_t d, double theta) {
  TORCH_CHECK(position >= 0, "RoPE position must be >= 0, got ", position);
  thread_local std::map<std::pair<int64_t, double>, RopeTable> tables;
  RopeTable& t = tables[{d, theta}];
  const size_t block = static_cast<size_t>(position / kRopeBlock);
  if (t.blocks.size() <= block) t.blocks.resize(block + 1);
  if (!t.blocks[block]) t.blocks[block].reset(new float[kRopeBlock * 2 * d]);
  if (t.have.size() <= static_cast<size_t>(position)) t.have.resize(std::max<size_t>(position + 1, 2 * t.have.size()), false);
  float* row = t.blocks[block].get() + (position % kRopeBlock) * 2 * d;
  if (!t.have[position]) {
    auto [c, sn] = ropeRow(position, d, theta);
    std::copy(c.data_ptr<float>(), c.data_ptr<float>() + d, row);
    std::copy(sn.data_ptr<float>(), sn.data_ptr<float>() + d, row + d);
    t.have[position] = true;
  }
  return row;
}

// Sizes of one step: hidden D, H query and Hkv key/value heads of d, MLP width I.
struct Dims {
  int64_t D, H, Hkv, d, I;
};
struct Scratch {
  std::vector<float> h, a, q, k, v, attn, tmp, gate, up;
  void size(const Dims& s) {
    h.resize(s.D);
    a.resize(s.D);
    q.resize(s.H * s.d);
    k.resize(s.Hkv * s.d);
    v.resize(s.Hkv * s.d);
    attn.resize(s.H * s.d);
    tmp.resize(s.D);
    gate.resize(s.I);
    up.resize(s.I);
  }
};
template <class T>
const T* ptr(const at::Tensor& t) { return t.defined() ? t.data_ptr<T>() : nullptr; }

// The layer as plain loops over vector_kernels, for weights and cache of one type T (float or
// BFloat16): no ATen call and no allocation per layer. h [D] (float32) is updated in place; the
// token's key and value go to row `len` of the [Hkv, capacity, d] buffers (rounded to T).
// `w` as motDecodeStep documents it.
template <class T>
void layerLoops(float* h, const std::vector<at::Tensor>& w, const at::Tensor& kb, const at::Tensor& vb, int64_t len,
                const float* cos, const float* sin, const Dims& s, double eps, Scratch& t, uc::profile::Laps& lap) {
  using uc::kernels::gemv;
  using namespace uc::profile;
  const int64_t cap = kb.size(1);
  // attention block
  std::copy(h, h + s.D, t.a.data());
  rmsNormRows(t.a.data(), ptr<T>(w[0]), 1, s.D, eps);
  lap.to(kNorms);
  gemv(ptr<T>(w[1]), t.a.data(), ptr<T>(w[2]), t.q.data(), s.H * s.d, s.D);
  gemv(ptr<T>(w[3]), t.a.data(), ptr<T>(w[4]), t.k.data(), s.Hkv * s.d, s.D);
  gemv(ptr<T>(w[5]), t.a.data(), ptr<T>(w[6]), t.v.data(), s.Hkv * s.d, s.D);
  lap.to(kProjections);
  rmsNormRows(t.q.data(), ptr<T>(w[8]), s.H, s.d, eps);
  rmsNormRows(t.k.data(), ptr<T>(w[9]), s.Hkv, s.d, eps);
  lap.to(kNorms);
  ropeRows(t.q.data(), cos, sin, s.H, s.d);
  ropeRows(t.k.data(), cos, sin, s.Hkv, s.d);
  T* pk = kb.data_ptr<T>();
  T* pv = vb.data_ptr<T>();
  for (int64_t hh = 0; hh < s.Hkv; ++hh) {
    for (int64_t i = 0; i < s.d; ++i) {
      pk[(hh * cap + len) * s.d + i] = static_cast<T>(t.k[hh * s.d + i]);
      pv[(hh * cap + len) * s.d + i] = static_cast<T>(t.v[hh * s.d + i]);
    }
  }
  uc::kernels::attendOneQuery(t.q.data(), pk, pv, t.attn.data(), s.H, s.Hkv, cap, len + 1, s.d);
  lap.to(kAttention);
  gemv(ptr<T>(w[7]), t.attn.data(), static_cast<const T*>(nullptr), t.tmp.data(), s.D, s.H * s.d);
  lap.to(kProjections);
  for (int64_t i = 0; i < s.D; ++i) h[i] += t.tmp[i];
  // MLP block: down(silu(gate(a)) * up(a))
  std::copy(h, h + s.D, t.a.data());
  rmsNormRows(t.a.data(), ptr<T>(w[10]), 1, s.D, eps);
  lap.to(kNorms);
  gemv(ptr<T>(w[11]), t.a.data(), static_cast<const T*>(nullptr), t.gate.data(), s.I, s.D);
  gemv(ptr<T>(w[12]), t.a.data(), static_cast<const T*>(nullptr), t.up.data(), s.I, s.D);
  for (int64_t i = 0; i < s.I; ++i) {
    const float g = t.gate[i];
    t.gate[i] = g / (1.f + std::exp(-g)) * t.up[i];
  }
  gemv(ptr<T>(w[13]), t.gate.data(), static_cast<const T*>(nullptr), t.tmp.data(), s.D, s.I);
  lap.to(kMlp);
  for (int64_t i = 0; i < s.D; ++i) h[i] += t.tmp[i];
}

// Every layer, then the final norm (when given), through the loops: x [1, D] of type T in, the
// same type out; the residual stream stays float32 in between.
template <class T>
at::Tensor decodeLoops(const at::Tensor& x, const std::vector<std::vector<at::Tensor>>& ws,
                       const std::vector<at::Tensor>& kbs, const std::vector<at::Tensor>& vbs, const at::Tensor& finalNorm,
                       int64_t len, const float* cos, const float* sin, const Dims& s, double eps,
                       uc::profile::Laps& lap) {
  thread_local Scratch scratch;
  scratch.size(s);
  float* h = scratch.h.data();
  const T* px = x.data_ptr<T>();
  for (int64_t i = 0; i < s.D; ++i) h[i] = wide(px[i]);
  for (size_t l = 0; l < ws.size(); ++l) {
    layerLoops<T>(h, ws[l], kbs[l], vbs[l], len, cos, sin, s, eps, scratch, lap);
  }
  if (finalNorm.defined()) rmsNormRows(h, finalNorm.data_ptr<T>(), 1, s.D, eps);
  at::Tensor out = at::empty({1, s.D}, x.options());
  T* po = out.data_ptr<T>();
  for (int64_t i = 0; i < s.D; ++i) po[i] = static_cast<T>(h[i]);
  lap.to(uc::profile::kOutput);
  return out;
}

// Scratch of a batched step: the per-row vectors of Scratch for B rows, row-major.
struct BatchScratch {
  std::vector<float> h, a, q, k, v, attn, tmp, gate, up;
  void size(const Dims& s, int64_t B) {
    h.resize(B * s.D);
    a.resize(B * s.D);
    q.resize(B * s.H * s.d);
    k.resize(B * s.Hkv * s.d);
    v.resize(B * s.Hkv * s.d);
    attn.resize(B * s.H * s.d);
    tmp.resize(B * s.D);
    gate.resize(B * s.I);
    up.resize(B * s.I);
  }
};

// One row of a batch: its cache buffers for this layer, its cached length and RoPE tables [d].
struct BatchRow {
  const at::Tensor* kb;
  const at::Tensor* vb;
  int64_t len;
  const float* cos;
  const float* sin;
};

// layerLoops for B rows at once: the same operations row by row, but every matrix product goes
// through kernels::gemm, so each weight matrix is read once for all B rows; attention is per row,
// over that row's own cache. h [B, D] is updated in place.
template <class T>
void layerLoopsBatch(float* h, const std::vector<at::Tensor>& w, const std::vector<BatchRow>& rows, const Dims& s,
                     double eps, BatchScratch& t, uc::profile::Laps& lap) {
  using uc::kernels::gemm;
  using namespace uc::profile;
  const int64_t B = static_cast<int64_t>(rows.size());
  const int64_t nq = s.H * s.d, nkv = s.Hkv * s.d;
  std::copy(h, h + B * s.D, t.a.data());
  rmsNormRows(t.a.data(), ptr<T>(w[0]), B, s.D, eps);
  lap.to(kNorms);
  gemm(ptr<T>(w[1]), t.a.data(), ptr<T>(w[2]), t.q.data(), B, nq, s.D);
  gemm(ptr<T>(w[3]), t.a.data(), ptr<T>(w[4]), t.k.data(), B, nkv, s.D);
  gemm(ptr<T>(w[5]), t.a.data(), ptr<T>(w[6]), t.v.data(), B, nkv, s.D);
  lap.to(kProjections);
  rmsNormRows(t.q.data(), ptr<T>(w[8]), B * s.H, s.d, eps);
  rmsNormRows(t.k.data(), ptr<T>(w[9]), B * s.Hkv, s.d, eps);
  lap.to(kNorms);
  for (int64_t b = 0; b < B; ++b) {
    const BatchRow& r = rows[b];
    float* q = t.q.data() + b * nq;
    float* k = t.k.data() + b * nkv;
    const float* v = t.v.data() + b * nkv;
    ropeRows(q, r.cos, r.sin, s.H, s.d);
    ropeRows(k, r.cos, r.sin, s.Hkv, s.d);
    const int64_t cap = r.kb->size(1);
    T* pk = r.kb->data_ptr<T>();
    T* pv = r.vb->data_ptr<T>();
    for (int64_t hh = 0; hh < s.Hkv; ++hh) {
      for (int64_t i = 0; i < s.d; ++i) {
        pk[(hh * cap + r.len) * s.d + i] = static_cast<T>(k[hh * s.d + i]);
        pv[(hh * cap + r.len) * s.d + i] = static_cast<T>(v[hh * s.d + i]);
      }
    }
    uc::kernels::attendOneQuery(q, pk, pv, t.attn.data() + b * nq, s.H, s.Hkv, cap, r.len + 1, s.d);
  }
  lap.to(kAttention);
  gemm(ptr<T>(w[7]), t.attn.data(), static_cast<const T*>(nullptr), t.tmp.data(), B, s.D, nq);
  lap.to(kProjections);
  for (int64_t i = 0; i < B * s.D; ++i) h[i] += t.tmp[i];
  std::copy(h, h + B * s.D, t.a.data());
  rmsNormRows(t.a.data(), ptr<T>(w[10]), B, s.D, eps);
  lap.to(kNorms);
  gemm(ptr<T>(w[11]), t.a.data(), static_cast<const T*>(nullptr), t.gate.data(), B, s.I, s.D);
  gemm(ptr<T>(w[12]), t.a.data(), static_cast<const T*>(nullptr), t.up.data(), B, s.I, s.D);
  for (int64_t i = 0; i < B * s.I; ++i) {
    const float g = t.gate[i];
    t.gate[i] = g / (1.f + std::exp(-g)) * t.up[i];
  }
  gemm(ptr<T>(w[13]), t.gate.data(), static_cast<const T*>(nullptr), t.tmp.data(), B, s.D, s.I);
  lap.to(kMlp);
  for (int64_t i = 0; i < B * s.D; ++i) h[i] += t.tmp[i];
}

// decodeLoops for B rows: x [B, D] of type T in, [B, D] out. kbs[b][l], vbs[b][l]: row b's buffers
// of layer l; lens[b] its cached length; rope[b] its RoPE cos and sin (ropeAt).
template <class T>
at::Tensor decodeLoopsBatch(const at::Tensor& x, const std::vector<std::vector<at::Tensor>>& ws,
                            const std::vector<std::vector<at::Tensor>>& kbs, const std::vector<std::vector<at::Tensor>>& vbs,
                            const at::Tensor& finalNorm, const std::vector<int64_t>& lens,
                            const std::vector<const float*>& rope, const Dims& s, double eps, uc::profile::Laps& lap) {
  const int64_t B = x.size(0);
  thread_local BatchScratch scratch;
  scratch.size(s, B);
  float* h = scratch.h.data();
  const T* px = x.data_ptr<T>();
  for (int64_t i = 0; i < B * s.D; ++i) h[i] = wide(px[i]);
  std::vector<BatchRow> rows(B);
  for (size_t l = 0; l < ws.size(); ++l) {
    for (int64_t b = 0; b < B; ++b) rows[b] = {&kbs[b][l], &vbs[b][l], lens[b], rope[b], rope[b] + s.d};
    layerLoopsBatch<T>(h, ws[l], rows, s, eps, scratch, lap);
  }
  if (finalNorm.defined()) rmsNormRows(h, finalNorm.data_ptr<T>(), B, s.D, eps);
  at::Tensor out = at::empty({B, s.D}, x.options());
  T* po = out.data_ptr<T>();
  for (int64_t i = 0; i < B * s.D; ++i) po[i] = static_cast<T>(h[i]);
  lap.to(uc::profile::kOutput);
  return out;
}

// The same layer in ATen operations, for any dtype and device (the TS layers' order).
at::Tensor layerAten(const at::Tensor& x, const std::vector<at::Tensor>& w, const at::Tensor& kb, const at::Tensor& vb,
                     int64_t len, const at::Tensor& cos, const at::Tensor& sin, const Dims& s, double eps) {
  at::Tensor a = rmsNorm(x, w[0], eps);
  at::Tensor q = rmsNorm(at::linear(a, w[1], w[2]).reshape({1, s.H, s.d}), w[8], eps);
  at::Tensor k = rmsNorm(at::linear(a, w[3], w[4]).reshape({1, s.Hkv, s.d}), w[9], eps);
  at::Tensor v = at::linear(a, w[5], w[6]).reshape({1, s.Hkv, s.d});
  q = rope(q.transpose(0, 1), cos, sin);  // [H, 1, d]
  k = rope(k.transpose(0, 1), cos, sin);  // [Hkv, 1, d]
  kb.narrow(1, len, 1).copy_(k);
  vb.narrow(1, len, 1).copy_(v.transpose(0, 1));
  at::Tensor keys = kb.narrow(1, 0, len + 1).unsqueeze(0);
  at::Tensor values = vb.narrow(1, 0, len + 1).unsqueeze(0);
  // the G query heads of a KV head as G queries (attention() in mot.ts, unmasked path); 2.x
  // renamed 1.13's private attention op (docs/engine.md, "libtorch versions")
  at::Tensor qg = q.reshape({1, s.Hkv, s.H / s.Hkv, s.d});
#if TORCH_VERSION_MAJOR >= 2
  at::Tensor o = at::scaled_dot_product_attention(qg, keys, values, c10::nullopt, 0.0, false);
#else
  at::Tensor o = std::get<0>(at::_scaled_dot_product_attention(qg, keys, values, c10::nullopt, 0.0, false, false));
#endif
  at::Tensor attn = o.reshape({s.H, 1, s.d}).transpose(0, 1).reshape({1, s.H * s.d});
  at::Tensor h1 = x.add(at::linear(attn, w[7]));
  at::Tensor m = rmsNorm(h1, w[10], eps);
  return h1.add(at::linear(at::silu(at::linear(m, w[11])).mul(at::linear(m, w[12])), w[13]));
}

// Shape checks before any raw pointer is read: a wrong weight must be an error, not a stray read.
void checkLayer(const std::vector<at::Tensor>& w, const at::Tensor& kb, const at::Tensor& vb, int64_t len,
                const Dims& s) {
  auto matrix = [&](int i, int64_t rows, int64_t cols, const char* name) {
    TORCH_CHECK(w[i].defined() && w[i].dim() == 2 && w[i].size(0) == rows && w[i].size(1) == cols, "motDecodeStep: ",
                name, " must be [", rows, ", ", cols, "], got ", w[i].defined() ? w[i].sizes() : at::IntArrayRef{});
  };
  auto vec = [&](int i, int64_t n, const char* name, bool optional) {
    if (optional && !w[i].defined()) return;
    TORCH_CHECK(w[i].defined() && w[i].dim() == 1 && w[i].size(0) == n, "motDecodeStep: ", name, " must be [", n,
                "], got ", w[i].defined() ? w[i].sizes() : at::IntArrayRef{});
  };
  vec(0, s.D, "input_layernorm weight", false);
  matrix(1, s.H * s.d, s.D, "q_proj weight");
  vec(2, s.H * s.d, "q_proj bias", true);
  matrix(3, s.Hkv * s.d, s.D, "k_proj weight");
  vec(4, s.Hkv * s.d, "k_proj bias", true);
  matrix(5, s.Hkv * s.d, s.D, "v_proj weight");
  vec(6, s.Hkv * s.d, "v_proj bias", true);
  matrix(7, s.D, s.H * s.d, "o_proj weight");
  vec(8, s.d, "q_norm weight", false);
  vec(9, s.d, "k_norm weight", false);
  vec(10, s.D, "post_attention_layernorm weight", false);
  matrix(11, s.I, s.D, "gate_proj weight");
  matrix(12, s.I, s.D, "up_proj weight");
  matrix(13, s.D, s.I, "down_proj weight");
  for (const at::Tensor* b : {&kb, &vb}) {
    TORCH_CHECK(b->dim() == 3 && b->size(0) == s.Hkv && b->size(2) == s.d && b->size(1) > len,
                "motDecodeStep: cache buffers must be [", s.Hkv, ", capacity > ", len, ", ", s.d, "], got ", b->sizes());
  }
}

// A layer list as motDecodeStep takes it: 14 tensors (or null) per layer; sets s.I.
// `fn` names the caller in errors.
std::vector<std::vector<at::Tensor>> layerWeights(Napi::Env env, const Napi::Array& layers, Dims& s, const char* fn) {
  std::vector<std::vector<at::Tensor>> ws(layers.Length(), std::vector<at::Tensor>(14));
  for (uint32_t l = 0; l < layers.Length(); ++l) {
    auto arr = layers.Get(l).As<Napi::Array>();
    if (arr.Length() != 14) throw Napi::TypeError::New(env, std::string(fn) + ": each layer needs 14 tensors");
    for (uint32_t i = 0; i < 14; ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNull() && !v.IsUndefined()) ws[l][i] = uc::unwrapTensor(v, "layer weight");
    }
    if (ws[l][11].defined() && ws[l][11].dim() == 2) s.I = ws[l][11].size(0);
  }
  return ws;
}

// motDecodeStep(x [1, D], layers: Tensor[14][], keyBufs: Tensor[], valueBufs: Tensor[], length,
//   position, ropeTheta, numHeads, numKvHeads, headDim, eps, finalNorm?) -> hidden [1, D]
// Per layer, in this order: input_layernorm, q weight, q bias, k weight, k bias, v weight, v bias,
// o weight, q_norm, k_norm, post_attention_layernorm, gate, up, down (a null bias is none). Writes
// the token's key and value into row `length` of each layer's buffers ([Hkv, capacity, d]). With
// finalNorm (the model's last RMSNorm weight) the result is normed as the model's output is.
// float32 or bfloat16 CPU tensors all of x's dtype take the loops (decodeLoops), anything else
// the ATen path (layerAten).
Napi::Value MotDecodeStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  uc::profile::Laps lap;
  at::NoGradGuard noGrad;
  at::Tensor x = uc::unwrapTensor(info[0], "x");
  auto layers = info[1].As<Napi::Array>();
  auto keyBufs = info[2].As<Napi::Array>();
  auto valueBufs = info[3].As<Napi::Array>();
  int64_t len = info[4].As<Napi::Number>().Int64Value();
  int64_t position = info[5].As<Napi::Number>().Int64Value();
  double theta = info[6].As<Napi::Number>().DoubleValue();
  Dims s{0, info[7].As<Napi::Number>().Int64Value(), info[8].As<Napi::Number>().Int64Value(),
         info[9].As<Napi::Number>().Int64Value(), 0};
  double eps = info[10].As<Napi::Number>().DoubleValue();
  at::Tensor finalNorm;
  if (info.Length() > 11 && !info[11].IsNull() && !info[11].IsUndefined()) finalNorm = uc::unwrapTensor(info[11], "final norm");
  if (x.dim() != 2 || x.size(0) != 1) throw Napi::TypeError::New(env, "motDecodeStep: x must be [1, D]");
  if (layers.Length() != keyBufs.Length() || layers.Length() != valueBufs.Length()) {
    throw Napi::TypeError::New(env, "motDecodeStep: one key and one value buffer per layer");
  }
  if (s.H <= 0 || s.Hkv <= 0 || s.d <= 0 || s.H % s.Hkv != 0) {
    throw Napi::RangeError::New(env, "motDecodeStep: numHeads must be a positive multiple of numKvHeads");
  }
  s.D = x.size(1);
  TORCH_CHECK(!finalNorm.defined() || (finalNorm.dim() == 1 && finalNorm.size(0) == s.D), "motDecodeStep: final norm weight must be [",
              s.D, "], got ", finalNorm.defined() ? finalNorm.sizes() : at::IntArrayRef{});
  const std::vector<std::vector<at::Tensor>> ws = layerWeights(env, layers, s, "motDecodeStep");
  std::vector<at::Tensor> kbs, vbs;
  // the loops need every tensor of x's dtype (float32 or bfloat16), on the CPU, contiguous
  const at::ScalarType dt = x.scalar_type();
  bool loops = (dt == at::kFloat || dt == at::kBFloat16) && plain(x, dt) && (!finalNorm.defined() || plain(finalNorm, dt));
  for (uint32_t l = 0; l < layers.Length(); ++l) {
    kbs.push_back(uc::unwrapTensor(keyBufs.Get(l), "key buffer"));
    vbs.push_back(uc::unwrapTensor(valueBufs.Get(l), "value buffer"));
    checkLayer(ws[l], kbs[l], vbs[l], len, s);
    for (const at::Tensor& t : ws[l]) loops = loops && (!t.defined() || plain(t, dt));
    loops = loops && plain(kbs[l], dt) && plain(vbs[l], dt);
  }
  at::Tensor h;
  if (loops) {
    const float* rope = ropeAt(position, s.d, theta);
    lap.to(uc::profile::kSetup);
    h = dt == at::kFloat ? decodeLoops<float>(x, ws, kbs, vbs, finalNorm, len, rope, rope + s.d, s, eps, lap)
                         : decodeLoops<c10::BFloat16>(x, ws, kbs, vbs, finalNorm, len, rope, rope + s.d, s, eps, lap);
  } else {
    auto [cos, sin] = ropeRow(position, s.d, theta);
    h = x;
    for (size_t l = 0; l < ws.size(); ++l) h = layerAten(h, ws[l], kbs[l], vbs[l], len, cos, sin, s, eps);
    if (finalNorm.defined()) h = rmsNorm(h, finalNorm, eps);
  }
  return uc::wrapTensor(env, h);
  UC_GUARD_END(env)
}

// Number arrays of the batched step (one entry per row).
std::vector<int64_t> int64s(const Napi::Array& a) {
  std::vector<int64_t> out(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out[i] = a.Get(i).As<Napi::Number>().Int64Value();
  return out;
}

// motDecodeBatch(x [B, D], layers: Tensor[14][], keyBufs: Tensor[B][layers], valueBufs: Tensor[B][layers],
//   lengths: number[B], positions: number[B], ropeTheta, numHeads, numKvHeads, headDim, eps, finalNorm?)
//   -> hidden [B, D]
// motDecodeStep for B sequences advanced one token together: row b attends over its own cache
// (lengths[b] rows, its token written at row lengths[b]) at RoPE position positions[b]. On the
// loops path each weight matrix is read once per step for all rows (kernels::gemm), and row b's
// result equals motDecodeStep of row b alone; other dtypes and devices run layerAten row by row.
Napi::Value MotDecodeBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  uc::profile::Laps lap;
  at::NoGradGuard noGrad;
  at::Tensor x = uc::unwrapTensor(info[0], "x");
  auto keyBufs = info[2].As<Napi::Array>();
  auto valueBufs = info[3].As<Napi::Array>();
  const std::vector<int64_t> lens = int64s(info[4].As<Napi::Array>());
  const std::vector<int64_t> positions = int64s(info[5].As<Napi::Array>());
  double theta = info[6].As<Napi::Number>().DoubleValue();
  Dims s{0, info[7].As<Napi::Number>().Int64Value(), info[8].As<Napi::Number>().Int64Value(),
         info[9].As<Napi::Number>().Int64Value(), 0};
  double eps = info[10].As<Napi::Number>().DoubleValue();
  at::Tensor finalNorm;
  if (info.Length() > 11 && !info[11].IsNull() && !info[11].IsUndefined()) finalNorm = uc::unwrapTensor(info[11], "final norm");
  if (x.dim() != 2 || x.size(0) < 1) throw Napi::TypeError::New(env, "motDecodeBatch: x must be [B, D] with B >= 1");
  const int64_t B = x.size(0);
  if (static_cast<int64_t>(keyBufs.Length()) != B || static_cast<int64_t>(valueBufs.Length()) != B ||
      static_cast<int64_t>(lens.size()) != B || static_cast<int64_t>(positions.size()) != B) {
    throw Napi::TypeError::New(env, "motDecodeBatch: one key and value buffer list, length and position per row of x");
  }
  if (s.H <= 0 || s.Hkv <= 0 || s.d <= 0 || s.H % s.Hkv != 0) {
    throw Napi::RangeError::New(env, "motDecodeBatch: numHeads must be a positive multiple of numKvHeads");
  }
  s.D = x.size(1);
  TORCH_CHECK(!finalNorm.defined() || (finalNorm.dim() == 1 && finalNorm.size(0) == s.D), "motDecodeBatch: final norm weight must be [",
              s.D, "], got ", finalNorm.defined() ? finalNorm.sizes() : at::IntArrayRef{});
  const std::vector<std::vector<at::Tensor>> ws = layerWeights(env, info[1].As<Napi::Array>(), s, "motDecodeBatch");
  const at::ScalarType dt = x.scalar_type();
  bool loops = (dt == at::kFloat || dt == at::kBFloat16) && plain(x, dt) && (!finalNorm.defined() || plain(finalNorm, dt));
  for (const auto& layer : ws) for (const at::Tensor& t : layer) loops = loops && (!t.defined() || plain(t, dt));
  std::vector<std::vector<at::Tensor>> kbs(B), vbs(B);
  for (int64_t b = 0; b < B; ++b) {
    auto kr = keyBufs.Get(static_cast<uint32_t>(b)).As<Napi::Array>();
    auto vr = valueBufs.Get(static_cast<uint32_t>(b)).As<Napi::Array>();
    if (kr.Length() != ws.size() || vr.Length() != ws.size()) throw Napi::TypeError::New(env, "motDecodeBatch: one key and one value buffer per layer for each row");
    for (uint32_t l = 0; l < ws.size(); ++l) {
      kbs[b].push_back(uc::unwrapTensor(kr.Get(l), "key buffer"));
      vbs[b].push_back(uc::unwrapTensor(vr.Get(l), "value buffer"));
      checkLayer(ws[l], kbs[b][l], vbs[b][l], lens[b], s);
      loops = loops && plain(kbs[b][l], dt) && plain(vbs[b][l], dt);
    }
  }
  if (loops) {
    std::vector<const float*> rope(B);
    for (int64_t b = 0; b < B; ++b) rope[b] = ropeAt(positions[b], s.d, theta);
    lap.to(uc::profile::kSetup);
    if (dt == at::kFloat) return uc::wrapTensor(env, decodeLoopsBatch<float>(x, ws, kbs, vbs, finalNorm, lens, rope, s, eps, lap));
    return uc::wrapTensor(env, decodeLoopsBatch<c10::BFloat16>(x, ws, kbs, vbs, finalNorm, lens, rope, s, eps, lap));
  }
  std::vector<at::Tensor> outs;
  for (int64_t b = 0; b < B; ++b) {
    auto [cos, sin] = ropeRow(positions[b], s.d, theta);
    at::Tensor h = x.narrow(0, b, 1);
    for (size_t l = 0; l < ws.size(); ++l) h = layerAten(h, ws[l], kbs[b][l], vbs[b][l], lens[b], cos, sin, s, eps);
    outs.push_back(finalNorm.defined() ? rmsNorm(h, finalNorm, eps) : h);
  }
  return uc::wrapTensor(env, at::cat(outs, 0));
  UC_GUARD_END(env)
}

// linearVector(x [N, in], weight [out, in], bias [out] | null) -> [N, out]: a linear of a few rows
// through the decode kernels (the LM head of one decoded token, or of a batched step's N), for
// float32 or bfloat16 CPU tensors of one dtype; the result has that dtype (float32 sums in
// between). Row n equals linearVector of row n alone, bit for bit (kernels::gemm).
Napi::Value LinearVector(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::NoGradGuard noGrad;
  const at::Tensor x = uc::unwrapTensor(info[0], "x").contiguous();
  const at::Tensor w = uc::unwrapTensor(info[1], "weight").contiguous();
  at::Tensor b;
  if (info.Length() > 2 && !info[2].IsNull() && !info[2].IsUndefined()) b = uc::unwrapTensor(info[2], "bias").contiguous();
  const at::ScalarType dt = w.scalar_type();
  TORCH_CHECK((dt == at::kFloat || dt == at::kBFloat16) && plain(x, dt) && plain(w, dt) && (!b.defined() || plain(b, dt)),
              "linearVector: x, weight and bias must be CPU tensors of one dtype, float32 or bfloat16");
  TORCH_CHECK(x.dim() == 2 && x.size(0) >= 1 && w.dim() == 2 && w.size(1) == x.size(1), "linearVector: x must be [N, ",
              w.dim() == 2 ? w.size(1) : -1, "] with N >= 1 for a weight of shape ", w.sizes(), ", got ", x.sizes());
  TORCH_CHECK(!b.defined() || (b.dim() == 1 && b.size(0) == w.size(0)), "linearVector: bias must be [", w.size(0), "]");
  const int64_t N = x.size(0);
  at::Tensor xf = x.to(at::kFloat);
  at::Tensor y = at::empty({N, w.size(0)}, xf.options());
  if (dt == at::kFloat) {
    uc::kernels::gemm(ptr<float>(w), xf.data_ptr<float>(), ptr<float>(b), y.data_ptr<float>(), N, w.size(0), w.size(1));
  } else {
    uc::kernels::gemm(ptr<c10::BFloat16>(w), xf.data_ptr<float>(), ptr<c10::BFloat16>(b), y.data_ptr<float>(), N,
                      w.size(0), w.size(1));
  }
  return uc::wrapTensor(env, dt == at::kFloat ? y : y.to(dt));
  UC_GUARD_END(env)
}

}  // namespace

void registerMotDecodeFns(Napi::Env env, Napi::Object exports) {
  exports.Set("motDecodeStep", Napi::Function::New(env, MotDecodeStep));
  exports.Set("motDecodeBatch", Napi::Function::New(env, MotDecodeBatch));
  exports.Set("linearVector", Napi::Function::New(env, LinearVector));
}
