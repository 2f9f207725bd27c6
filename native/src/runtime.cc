// Threads, seeds, random state and devices.
#include "common.h"
#include <torch/cuda.h>
#include <torch/version.h>
#include <ATen/CPUGeneratorImpl.h>

namespace {

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "setNumThreads: n must be a positive integer");
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::TypeError::New(env, "setNumThreads: n must be a positive integer");
  at::set_num_threads(n);
  return env.Undefined();
  UC_GUARD_END(env)
}

Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  uint64_t seed;
  if (info[0].IsBigInt()) {
    bool lossless;
    seed = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  } else if (info[0].IsNumber()) {
    seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  } else {
    throw Napi::TypeError::New(env, "manualSeed: seed must be a number or bigint");
  }
  torch::manual_seed(seed);
  return env.Undefined();
  UC_GUARD_END(env)
}

// The CPU generator's state as a uint8 tensor (saved in checkpoints for exact resume).
Napi::Value GetRngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return uc::wrapTensor(env, gen.get_state());
  UC_GUARD_END(env)
}

Napi::Value SetRngState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  const at::Tensor& state = uc::unwrapTensor(info[0], "state");
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
  return env.Undefined();
  UC_GUARD_END(env)
}

Napi::Value CudaIsAvailable(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), torch::cuda::is_available());
}

Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(torch::cuda::device_count()));
}

Napi::Value Version(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), TORCH_VERSION);
}

}  // namespace

void registerRuntimeFns(Napi::Env env, Napi::Object exports) {
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("getRngState", Napi::Function::New(env, GetRngState));
  exports.Set("setRngState", Napi::Function::New(env, SetRngState));
  exports.Set("cudaIsAvailable", Napi::Function::New(env, CudaIsAvailable));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  exports.Set("version", Napi::Function::New(env, Version));
}
