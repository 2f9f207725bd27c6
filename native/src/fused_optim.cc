// The optimizer step and gradient clipping as single native calls over all parameters of a
// group (src/nn/optim.ts, docs/engine.md "Fused optimizer step"):
//   adamwStep   one pass that reads p, g, m, v once and writes p, m, v (optim_kernels.cc), instead
//               of the ~9 multi-tensor operators that each stream every parameter;
//   gradNorm2   the global 2-norm of the gradients, libtorch's own per-tensor norm kernel run for
//               several tensors at once (so the bits are those of _foreach_norm), no per-tensor
//               value back to JS;
//   scaleTensors  x *= s over many tensors (clipping without the optimizer).
// All three cut the work into one parallel region over every element (or tensor) of the call,
// so a second intra-op thread takes half the bytes, where the per-tensor operators paid a
// parallel-region wake-up per tensor. They apply to contiguous float32 CPU tensors; the others
// (and overlapping tensors) are refused with `false` / null and the TS side takes the
// multi-tensor operators instead.
#include "common.h"
#include "optim_kernels.h"
#include <ATen/Parallel.h>
#include <algorithm>
#include <vector>

namespace {

// Below this many elements a region runs on the calling thread only (libtorch's own grain).
constexpr int64_t kGrain = at::internal::GRAIN_SIZE;

std::vector<at::Tensor> tensorList(const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be an array of tensors");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  out.reserve(a.Length());
  for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(uc::unwrapTensor(a.Get(i), what));
  return out;
}

bool plainFloat(const at::Tensor& t) {
  return t.defined() && t.device().is_cpu() && t.layout() == at::kStrided && t.scalar_type() == at::kFloat &&
         t.is_contiguous();
}

// Whether some byte range of `written` meets another range of `written` or of `read` (the loop
// would then race with itself or read what another element wrote).
bool overlapping(const std::vector<const std::vector<at::Tensor>*>& written, const std::vector<at::Tensor>& read) {
  struct Range {
    uintptr_t begin, end;
    bool written;
  };
  std::vector<Range> rs;
  auto add = [&](const at::Tensor& t, bool w) {
    if (t.numel() == 0) return;
    const auto b = reinterpret_cast<uintptr_t>(t.data_ptr());
    rs.push_back({b, b + static_cast<uintptr_t>(t.numel()) * t.element_size(), w});
  };
  for (const auto* list : written) for (const at::Tensor& t : *list) add(t, true);
  for (const at::Tensor& t : read) add(t, false);
  std::sort(rs.begin(), rs.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  uintptr_t end = 0, writtenEnd = 0;
  for (const Range& r : rs) {
    if (r.begin < writtenEnd || (r.written && r.begin < end)) return true;
    end = std::max(end, r.end);
    if (r.written) writtenEnd = std::max(writtenEnd, r.end);
  }
  return false;
}

// offsets[i] = elements before tensor i; offsets.back() = all elements.
std::vector<int64_t> offsetsOf(const std::vector<at::Tensor>& ts) {
  std::vector<int64_t> o(ts.size() + 1, 0);
  for (size_t i = 0; i < ts.size(); ++i) o[i + 1] = o[i] + ts[i].numel();
  return o;
}

// Calls f(tensor, from, to) for every piece of the flat element range [begin, end) that lies in
// one tensor (the elements of all tensors laid end to end).
template <class F>
void forPieces(const std::vector<int64_t>& offsets, int64_t begin, int64_t end, const F& f) {
  size_t i = std::upper_bound(offsets.begin(), offsets.end(), begin) - offsets.begin() - 1;
  for (; i + 1 < offsets.size() && offsets[i] < end; ++i) {
    const int64_t from = std::max(begin, offsets[i]) - offsets[i];
    const int64_t to = std::min(end, offsets[i + 1]) - offsets[i];
    if (to > from) f(i, from, to);
  }
}

void bumpVersions(const std::vector<at::Tensor>& ts) {
  for (const at::Tensor& t : ts) t.unsafeGetTensorImpl()->bump_version();
}

float scalarArg(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string("adamwStep: constants.") + key + " must be a number");
  // the double -> float conversion libtorch makes when a CPU float32 kernel reads a Scalar
  return static_cast<float>(v.As<Napi::Number>().DoubleValue());
}

// adamwStep(params, grads, expAvgs, expAvgSqs, constants) -> boolean: one AdamW update of every
// parameter (optim_kernels.h names the constants). False, with nothing changed, when a tensor is
// not contiguous float32 on the CPU, the four lists disagree in length or sizes, or tensors overlap.
Napi::Value AdamWStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  const std::vector<at::Tensor> p = tensorList(info[0], "adamwStep: params");
  const std::vector<at::Tensor> g = tensorList(info[1], "adamwStep: grads");
  const std::vector<at::Tensor> m = tensorList(info[2], "adamwStep: expAvgs");
  const std::vector<at::Tensor> v = tensorList(info[3], "adamwStep: expAvgSqs");
  if (!info[4].IsObject()) throw Napi::TypeError::New(env, "adamwStep: constants must be an object");
  const Napi::Object k = info[4].As<Napi::Object>();
  const uc::kernels::AdamWConstants c{scalarArg(k, "gradScale"), scalarArg(k, "decay"), scalarArg(k, "beta1"),
                                      scalarArg(k, "gradWeight1"), scalarArg(k, "beta2"), scalarArg(k, "gradWeight2"),
                                      scalarArg(k, "biasCorrection2Sqrt"), scalarArg(k, "eps"),
                                      scalarArg(k, "negStepSize")};
  const size_t n = p.size();
  if (g.size() != n || m.size() != n || v.size() != n) return Napi::Boolean::New(env, false);
  for (size_t i = 0; i < n; ++i) {
    const bool ok = plainFloat(p[i]) && plainFloat(g[i]) && plainFloat(m[i]) && plainFloat(v[i]) &&
                    g[i].sizes() == p[i].sizes() && m[i].sizes() == p[i].sizes() && v[i].sizes() == p[i].sizes();
    if (!ok) return Napi::Boolean::New(env, false);
  }
  if (overlapping({&p, &m, &v}, g)) return Napi::Boolean::New(env, false);
  const std::vector<int64_t> offsets = offsetsOf(p);
  std::vector<float*> pp(n), mp(n), vp(n);
  std::vector<const float*> gp(n);
  for (size_t i = 0; i < n; ++i) {
    pp[i] = p[i].data_ptr<float>();
    gp[i] = g[i].data_ptr<float>();
    mp[i] = m[i].data_ptr<float>();
    vp[i] = v[i].data_ptr<float>();
  }
  at::parallel_for(0, offsets.back(), kGrain, [&](int64_t begin, int64_t end) {
    forPieces(offsets, begin, end, [&](size_t i, int64_t from, int64_t to) {
      uc::kernels::adamwSpan(pp[i] + from, gp[i] + from, mp[i] + from, vp[i] + from, to - from, c);
    });
  });
  // as the in-place operators do: autograd sees that these tensors changed
  bumpVersions(p);
  bumpVersions(m);
  bumpVersions(v);
  return Napi::Boolean::New(env, true);
  UC_GUARD_END(env)
}

// gradNorm2(tensors) -> number | null: norm(stack(_foreach_norm(tensors, 2)), 2) as a number,
// with the same kernels (so the same bits); the per-tensor norms of one call run on all intra-op
// threads, tensor by tensor. Null when a tensor is not contiguous float32 on the CPU (the
// per-tensor norm of other layouts may split its sum by thread) or there are none.
Napi::Value GradNorm2(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::NoGradGuard noGrad;
  const std::vector<at::Tensor> ts = tensorList(info[0], "gradNorm2: tensors");
  if (ts.empty()) return env.Null();
  for (const at::Tensor& t : ts) if (!plainFloat(t)) return env.Null();
  const std::vector<int64_t> offsets = offsetsOf(ts);
  std::vector<at::Tensor> norms(ts.size());
  // a tensor is done by the chunk holding its first element; empty ones here
  for (size_t i = 0; i < ts.size(); ++i) if (ts[i].numel() == 0) norms[i] = at::linalg_vector_norm(ts[i], 2);
  at::parallel_for(0, offsets.back(), kGrain, [&](int64_t begin, int64_t end) {
    at::NoGradGuard workerNoGrad;  // grad mode is per thread
    size_t i = std::lower_bound(offsets.begin(), offsets.end() - 1, begin) - offsets.begin();
    for (; i < ts.size() && offsets[i] < end; ++i) {
      if (ts[i].numel() > 0) norms[i] = at::linalg_vector_norm(ts[i], 2);
    }
  });
  return Napi::Number::New(env, at::norm(at::stack(norms), 2).item<double>());
  UC_GUARD_END(env)
}

// scaleTensors(tensors, scale) -> boolean: t *= scale for each (as _foreach_mul_ with a Scalar).
// False, with nothing changed, when a tensor is not contiguous float32 on the CPU or two overlap.
Napi::Value ScaleTensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  const std::vector<at::Tensor> ts = tensorList(info[0], "scaleTensors: tensors");
  if (!info[1].IsNumber()) throw Napi::TypeError::New(env, "scaleTensors: scale must be a number");
  const float scale = static_cast<float>(info[1].As<Napi::Number>().DoubleValue());
  for (const at::Tensor& t : ts) if (!plainFloat(t)) return Napi::Boolean::New(env, false);
  if (overlapping({&ts}, {})) return Napi::Boolean::New(env, false);
  const std::vector<int64_t> offsets = offsetsOf(ts);
  std::vector<float*> ptrs(ts.size());
  for (size_t i = 0; i < ts.size(); ++i) ptrs[i] = ts[i].data_ptr<float>();
  at::parallel_for(0, offsets.back(), kGrain, [&](int64_t begin, int64_t end) {
    forPieces(offsets, begin, end, [&](size_t i, int64_t from, int64_t to) { uc::kernels::scaleSpan(ptrs[i] + from, to - from, scale); });
  });
  bumpVersions(ts);
  return Napi::Boolean::New(env, true);
  UC_GUARD_END(env)
}

}  // namespace

void registerFusedOptimFns(Napi::Env env, Napi::Object exports) {
  exports.Set("adamwStep", Napi::Function::New(env, AdamWStep));
  exports.Set("gradNorm2", Napi::Function::New(env, GradNorm2));
  exports.Set("scaleTensors", Napi::Function::New(env, ScaleTensors));
}
