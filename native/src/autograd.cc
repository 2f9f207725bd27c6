// Autograd entry points the dispatcher cannot give: requires_grad, .grad, backward,
// autograd.grad, and the grad mode.
#include "common.h"
#include <torch/csrc/autograd/autograd.h>

namespace {

std::vector<at::Tensor> readTensors(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an array of Tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr[i];
    if (e.IsNull() || e.IsUndefined()) out.emplace_back();
    else out.push_back(uc::unwrapTensor(e, what));
  }
  return out;
}

Napi::Value SetRequiresGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::Tensor t = uc::unwrapTensor(info[0], "tensor");
  t.set_requires_grad(info[1].ToBoolean().Value());
  return env.Undefined();
  UC_GUARD_END(env)
}

Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), uc::unwrapTensor(info[0], "tensor").requires_grad());
}

Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), uc::unwrapTensor(info[0], "tensor").is_leaf());
}

// grad(t) -> a new handle on t.grad, or null.
Napi::Value Grad(const Napi::CallbackInfo& info) {
  return uc::wrapTensor(info.Env(), uc::unwrapTensor(info[0], "tensor").grad());
}

// setGrad(t, g | null): replace or clear t.grad (optimizers' zero_grad sets it to null).
Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::Tensor t = uc::unwrapTensor(info[0], "tensor");
  if (info[1].IsNull() || info[1].IsUndefined()) t.mutable_grad().reset();
  else t.mutable_grad() = uc::unwrapTensor(info[1], "grad");
  return env.Undefined();
  UC_GUARD_END(env)
}

// backward(t, gradient | null, retainGraph, createGraph), or backward([t...], [gradient | null...], ...)
Napi::Value Backward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  std::vector<at::Tensor> ts;
  std::vector<at::Tensor> gs;
  if (info[0].IsArray()) {
    ts = readTensors(env, info[0], "tensors");
    if (info.Length() > 1 && info[1].IsArray()) gs = readTensors(env, info[1], "gradients");
    if (!gs.empty() && gs.size() != ts.size()) throw Napi::TypeError::New(env, "backward: one gradient (or null) per tensor");
    if (gs.empty()) gs.resize(ts.size());
  } else {
    ts.push_back(uc::unwrapTensor(info[0], "tensor"));
    gs.emplace_back();
    if (info.Length() > 1 && info[1].IsNumber()) gs[0] = uc::unwrapTensor(info[1], "gradient");
  }
  c10::optional<bool> retain;
  if (info.Length() > 2 && info[2].IsBoolean()) retain = info[2].As<Napi::Boolean>().Value();
  bool create = info.Length() > 3 && info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  uc::runBackwardJob([&] { torch::autograd::backward(ts, gs, retain, create); });
  return env.Undefined();
  UC_GUARD_END(env)
}

// autogradGrad(outputs, inputs, gradOutputs | null, retainGraph, createGraph, allowUnused)
Napi::Value AutogradGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto outputs = readTensors(env, info[0], "outputs");
  auto inputs = readTensors(env, info[1], "inputs");
  std::vector<at::Tensor> gradOutputs;
  if (info[2].IsArray()) gradOutputs = readTensors(env, info[2], "gradOutputs");
  c10::optional<bool> retain;
  if (info[3].IsBoolean()) retain = info[3].As<Napi::Boolean>().Value();
  bool create = info[4].IsBoolean() && info[4].As<Napi::Boolean>().Value();
  bool allowUnused = info[5].IsBoolean() && info[5].As<Napi::Boolean>().Value();
  torch::autograd::variable_list grads;
  uc::runBackwardJob([&] { grads = torch::autograd::grad(outputs, inputs, gradOutputs, retain, create, allowUnused); });
  auto arr = Napi::Array::New(env, grads.size());
  for (size_t i = 0; i < grads.size(); ++i) arr.Set(static_cast<uint32_t>(i), uc::wrapTensor(env, grads[i]));
  return arr;
  UC_GUARD_END(env)
}

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(info[0].ToBoolean().Value());
  return Napi::Boolean::New(info.Env(), prev);
}

Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), at::GradMode::is_enabled());
}

}  // namespace

void registerAutogradFns(Napi::Env env, Napi::Object exports) {
  exports.Set("setRequiresGrad", Napi::Function::New(env, SetRequiresGrad));
  exports.Set("requiresGrad", Napi::Function::New(env, RequiresGrad));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("backward", Napi::Function::New(env, Backward));
  exports.Set("autogradGrad", Napi::Function::New(env, AutogradGrad));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
}
