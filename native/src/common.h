// Shared declarations of the addon: tensor handles, error translation, value conversion.
#pragma once
#include <napi.h>
#include <torch/torch.h>
#include <ATen/core/ivalue.h>
#include <functional>
#include <string>

namespace uc {

// JS holds a tensor as an integer id into the handle table (handle.cc).
// Puts a tensor in a new slot and returns its id (null for an undefined tensor).
Napi::Value wrapTensor(Napi::Env env, at::Tensor t);
// The tensor behind an id; throws a TypeError naming `what` when it is not one.
const at::Tensor& unwrapTensor(const Napi::Value& v, const char* what);
const at::Tensor& tensorAt(Napi::Env env, uint32_t id, const char* what);
// Empties a slot; false when it was already empty.
bool releaseTensor(Napi::Env env, const Napi::Value& v);

struct MemoryStats {
  int64_t liveTensors;
  int64_t liveBytes;
  int64_t liveStorages;
};
MemoryStats memoryStats();

// dtype and device names as the TS layer spells them.
at::ScalarType parseDtype(const std::string& s);
std::string dtypeName(at::ScalarType t);
at::Device parseDevice(const std::string& s);

// IValue -> JS (tensors become new handles).
Napi::Value fromIValue(Napi::Env env, const c10::IValue& v);

// Runs an autograd engine call (backward, grad) so that activation-checkpoint nodes can call back
// into JS (checkpoint.cc).
void runBackwardJob(const std::function<void()>& job);

}  // namespace uc

// Every native entry point runs inside this guard: a libtorch exception becomes a JS Error
// carrying the C++ message, never a crash.
#define UC_GUARD_BEGIN try {
#define UC_GUARD_END(env)                                                      \
  }                                                                            \
  catch (const Napi::Error&) {                                                 \
    throw;                                                                     \
  }                                                                            \
  catch (const c10::Error& e) {                                                \
    throw Napi::Error::New(env, e.what_without_backtrace());                   \
  }                                                                            \
  catch (const std::exception& e) {                                            \
    throw Napi::Error::New(env, e.what());                                     \
  }

void registerHandleFns(Napi::Env env, Napi::Object exports);
void registerOpFns(Napi::Env env, Napi::Object exports);
void registerDataFns(Napi::Env env, Napi::Object exports);
void registerAutogradFns(Napi::Env env, Napi::Object exports);
void registerRuntimeFns(Napi::Env env, Napi::Object exports);
void registerDistributedFns(Napi::Env env, Napi::Object exports);
void registerMotDecodeFns(Napi::Env env, Napi::Object exports);
void registerDecodeProfileFns(Napi::Env env, Napi::Object exports);
void registerAllocatorStatsFns(Napi::Env env, Napi::Object exports);
void registerCheckpointFns(Napi::Env env, Napi::Object exports);
void registerFusedOptimFns(Napi::Env env, Napi::Object exports);
