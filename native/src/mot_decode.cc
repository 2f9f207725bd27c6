// The decoder's one-token step on the understanding expert, in C++: the hot loop of text
// decoding (src/model/mot.ts, Qwen2MoTModel.forward's fast path). The same ATen operations as
// the TS layers, in the same order, but without a JS round trip per operator: at batch 1 a token
// is ~300 small operators, and the time between two uses of a weight matrix decides whether it
// is still in cache (see bench/README.md, model section).
#include "common.h"
#include <cmath>
#include <algorithm>
#include <map>
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
  at::Tensor c = cos.scalar_type() == x.scalar_type() ? cos : cos.to(x.scalar_type());
  at::Tensor s = sin.scalar_type() == x.scalar_type() ? sin : sin.to(x.scalar_type());
  return x.mul(c).add(rot.mul(s));
}

// Plain loops for the small per-token pieces (float32, CPU): each replaces 3-6 ATen calls of a
// few µs each. Sums run in float in index order, so results can differ from ATen's vectorised
// sums in the last bits (the test allows 1e-5).
bool plainF32(const at::Tensor& t) { return t.scalar_type() == at::kFloat && t.device().is_cpu() && t.is_contiguous(); }

// rows of `dim` in place: x <- w * (x * rsqrt(mean(x^2) + eps))
void rmsNormRows(float* x, const float* w, int64_t rows, int64_t dim, double eps) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x + r * dim;
    float ss = 0.f;
    for (int64_t i = 0; i < dim; ++i) ss += row[i] * row[i];
    const float inv = 1.f / std::sqrt(ss / static_cast<float>(dim) + static_cast<float>(eps));
    for (int64_t i = 0; i < dim; ++i) row[i] = w[i] * (row[i] * inv);
  }
}

// rows of `dim` in place: x <- x * cos + rotate_half(x) * sin, rotate_half(x) = [-x2, x1]
void ropeRows(float* x, const float* cos, const float* sin, int64_t rows, int64_t dim) {
  const int64_t half = dim / 2;
  std::vector<float> tmp(dim);
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

// motDecodeStep(x [1, D], layers: Tensor[14][], keyBufs: Tensor[], valueBufs: Tensor[], length,
//   position, ropeTheta, numHeads, numKvHeads, headDim, eps) -> hidden [1, D]
// Per layer, in this order: input_layernorm, q weight, q bias, k weight, k bias, v weight, v bias,
// o weight, q_norm, k_norm, post_attention_layernorm, gate, up, down (a null bias is none). Writes the token's
// key and value into row `length` of each layer's buffers ([Hkv, capacity, d]).
Napi::Value MotDecodeStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::NoGradGuard noGrad;
  at::Tensor h = uc::unwrapTensor(info[0], "x");
  auto layers = info[1].As<Napi::Array>();
  auto keyBufs = info[2].As<Napi::Array>();
  auto valueBufs = info[3].As<Napi::Array>();
  int64_t len = info[4].As<Napi::Number>().Int64Value();
  int64_t position = info[5].As<Napi::Number>().Int64Value();
  double theta = info[6].As<Napi::Number>().DoubleValue();
  int64_t H = info[7].As<Napi::Number>().Int64Value();
  int64_t Hkv = info[8].As<Napi::Number>().Int64Value();
  int64_t d = info[9].As<Napi::Number>().Int64Value();
  double eps = info[10].As<Napi::Number>().DoubleValue();
  if (h.dim() != 2 || h.size(0) != 1) throw Napi::TypeError::New(env, "motDecodeStep: x must be [1, D]");
  if (layers.Length() != keyBufs.Length() || layers.Length() != valueBufs.Length()) {
    throw Napi::TypeError::New(env, "motDecodeStep: one key and one value buffer per layer");
  }
  const int64_t G = H / Hkv;
  auto [cos, sin] = ropeRow(position, d, theta);
  for (uint32_t l = 0; l < layers.Length(); ++l) {
    auto arr = layers.Get(l).As<Napi::Array>();
    if (arr.Length() != 14) throw Napi::TypeError::New(env, "motDecodeStep: each layer needs 14 tensors");
    std::vector<at::Tensor> w(14);
    for (uint32_t i = 0; i < 14; ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNull() && !v.IsUndefined()) w[i] = uc::unwrapTensor(v, "layer weight");
    }
    const at::Tensor& kb = uc::unwrapTensor(keyBufs.Get(l), "key buffer");
    const at::Tensor& vb = uc::unwrapTensor(valueBufs.Get(l), "value buffer");
    if (kb.size(1) < len + 1) throw Napi::RangeError::New(env, "motDecodeStep: key buffer too small");
    // attention block
    const bool fast = plainF32(h) && plainF32(kb) && plainF32(vb) && plainF32(w[0]) && plainF32(w[8]) && plainF32(w[9]);
    at::Tensor q, k, v;
    if (fast) {
      at::Tensor a = h.clone();
      rmsNormRows(a.data_ptr<float>(), w[0].data_ptr<float>(), 1, a.size(1), eps);
      q = at::linear(a, w[1], w[2]).contiguous();  // [1, H*d] = [H, 1, d] in memory
      k = at::linear(a, w[3], w[4]).contiguous();
      v = at::linear(a, w[5], w[6]).contiguous();
      rmsNormRows(q.data_ptr<float>(), w[8].data_ptr<float>(), H, d, eps);
      rmsNormRows(k.data_ptr<float>(), w[9].data_ptr<float>(), Hkv, d, eps);
      ropeRows(q.data_ptr<float>(), cos.data_ptr<float>(), sin.data_ptr<float>(), H, d);
      ropeRows(k.data_ptr<float>(), cos.data_ptr<float>(), sin.data_ptr<float>(), Hkv, d);
      // row `len` of each head of the [Hkv, capacity, d] buffers
      const int64_t cap = kb.size(1);
      float* pk = kb.data_ptr<float>();
      float* pv = vb.data_ptr<float>();
      const float* sk = k.data_ptr<float>();
      const float* sv = v.data_ptr<float>();
      for (int64_t hh = 0; hh < Hkv; ++hh) {
        std::copy(sk + hh * d, sk + (hh + 1) * d, pk + (hh * cap + len) * d);
        std::copy(sv + hh * d, sv + (hh + 1) * d, pv + (hh * cap + len) * d);
      }
      q = q.reshape({H, 1, d});
    } else {
      at::Tensor a = rmsNorm(h, w[0], eps);
      q = rmsNorm(at::linear(a, w[1], w[2]).reshape({1, H, d}), w[8], eps);
      k = rmsNorm(at::linear(a, w[3], w[4]).reshape({1, Hkv, d}), w[9], eps);
      v = at::linear(a, w[5], w[6]).reshape({1, Hkv, d});
      q = rope(q.transpose(0, 1), cos, sin);  // [H, 1, d]
      k = rope(k.transpose(0, 1), cos, sin);  // [Hkv, 1, d]
      kb.narrow(1, len, 1).copy_(k);
      vb.narrow(1, len, 1).copy_(v.transpose(0, 1));
    }
    at::Tensor keys = kb.narrow(1, 0, len + 1).unsqueeze(0);
    at::Tensor values = vb.narrow(1, 0, len + 1).unsqueeze(0);
    // the G query heads of a KV head as G queries (attention() in mot.ts, unmasked path)
    auto o = at::_scaled_dot_product_attention(q.reshape({1, Hkv, G, d}), keys, values, c10::nullopt, 0.0, false, false);
    at::Tensor attn = std::get<0>(o).reshape({H, 1, d}).transpose(0, 1).reshape({1, H * d});
    at::Tensor h1 = h.add(at::linear(attn, w[7]));
    // MLP block
    at::Tensor m;
    if (fast && plainF32(w[10])) {
      m = h1.clone();
      rmsNormRows(m.data_ptr<float>(), w[10].data_ptr<float>(), 1, m.size(1), eps);
    } else {
      m = rmsNorm(h1, w[10], eps);
    }
    at::Tensor y = at::linear(at::silu(at::linear(m, w[11])).mul(at::linear(m, w[12])), w[13]);
    h = h1.add(y);
  }
  return uc::wrapTensor(env, h);
  UC_GUARD_END(env)
}

}  // namespace

void registerMotDecodeFns(Napi::Env env, Napi::Object exports) {
  exports.Set("motDecodeStep", Napi::Function::New(env, MotDecodeStep));
}
