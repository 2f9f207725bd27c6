// Tensor handles and memory accounting.
//
// JS refers to a tensor by a small integer id (a slot in this table), which costs nothing
// to create; dispose() empties the slot at once. The JS layer adds the garbage-collection
// safety net (src/torch/lifetime.ts). Bytes are counted exactly per storage (views share
// one) by memoryStats(); V8 is told about CPU bytes of freshly allocated storages, batched.
#include "common.h"
#include <unordered_set>

namespace uc {
namespace {

struct Slot {
  at::Tensor tensor;
  int64_t reportedBytes = 0;  // CPU bytes this handle told V8 about
};

// One table per JS thread: a worker thread (serving runs generation in one) has its own ids.
thread_local std::vector<Slot> gSlots;
thread_local std::vector<uint32_t> gFree;
thread_local int64_t gLive = 0;
thread_local int64_t gPendingExternal = 0;  // not yet reported to V8

constexpr int64_t kReportBatch = 1 << 20;

void flushExternal(napi_env env) {
  if (gPendingExternal == 0) return;
  int64_t adjusted;
  napi_adjust_external_memory(env, gPendingExternal, &adjusted);
  gPendingExternal = 0;
}

void note(napi_env env, int64_t delta) {
  gPendingExternal += delta;
  if (gPendingExternal >= kReportBatch || gPendingExternal <= -kReportBatch) flushExternal(env);
}

}  // namespace

Napi::Value wrapTensor(Napi::Env env, at::Tensor t) {
  if (!t.defined()) return env.Null();
  uint32_t id;
  if (!gFree.empty()) {
    id = gFree.back();
    gFree.pop_back();
  } else {
    id = static_cast<uint32_t>(gSlots.size());
    gSlots.emplace_back();
  }
  Slot& s = gSlots[id];
  // A storage held by no one else is new memory: the only case worth telling V8 about.
  if (t.has_storage() && t.device().is_cpu() && t.storage().use_count() == 1) {
    s.reportedBytes = static_cast<int64_t>(t.storage().nbytes());
    note(env, s.reportedBytes);
  } else {
    s.reportedBytes = 0;
  }
  s.tensor = std::move(t);
  ++gLive;
  return Napi::Number::New(env, id);
}

static Slot& slotOf(const Napi::Value& v, const char* what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), std::string(what) + " must be a Tensor");
  uint32_t id = v.As<Napi::Number>().Uint32Value();
  if (id >= gSlots.size()) throw Napi::Error::New(v.Env(), std::string(what) + " is a disposed Tensor (or not a tensor id)");
  return gSlots[id];
}

const at::Tensor& tensorAt(Napi::Env env, uint32_t id, const char* what) {
  if (id >= gSlots.size()) throw Napi::Error::New(env, std::string(what) + " is a disposed Tensor (or not a tensor id)");
  const at::Tensor& t = gSlots[id].tensor;
  if (!t.defined()) throw Napi::Error::New(env, std::string(what) + " is a disposed Tensor");
  return t;
}

const at::Tensor& unwrapTensor(const Napi::Value& v, const char* what) {
  Slot& s = slotOf(v, what);
  if (!s.tensor.defined()) throw Napi::Error::New(v.Env(), std::string(what) + " is a disposed Tensor");
  return s.tensor;
}

bool releaseTensor(Napi::Env env, const Napi::Value& v) {
  uint32_t id = v.As<Napi::Number>().Uint32Value();
  if (id >= gSlots.size() || !gSlots[id].tensor.defined()) return false;
  Slot& s = gSlots[id];
  if (s.reportedBytes) note(env, -s.reportedBytes);
  s.reportedBytes = 0;
  s.tensor.reset();
  gFree.push_back(id);
  --gLive;
  return true;
}

MemoryStats memoryStats() {
  std::unordered_set<const void*> seen;
  int64_t bytes = 0;
  for (const auto& s : gSlots) {
    if (!s.tensor.defined() || !s.tensor.has_storage()) continue;
    const void* key = s.tensor.storage().unsafeGetStorageImpl();
    if (seen.insert(key).second) bytes += static_cast<int64_t>(s.tensor.storage().nbytes());
  }
  return MemoryStats{gLive, bytes, static_cast<int64_t>(seen.size())};
}

}  // namespace uc

// Raw Node-API like ops.cc's call: every tensor of a hot loop passes through here.
static napi_value DisposeRaw(napi_env rawEnv, napi_callback_info cbinfo) {
  Napi::Env env(rawEnv);
  napi_value argv[1];
  size_t argc = 1;
  napi_get_cb_info(rawEnv, cbinfo, &argc, argv, nullptr, nullptr);
  napi_valuetype type = napi_undefined;
  if (argc >= 1) napi_typeof(rawEnv, argv[0], &type);
  if (type != napi_number) {
    Napi::TypeError::New(env, "dispose: tensor id expected").ThrowAsJavaScriptException();
    return nullptr;
  }
  napi_value result;
  napi_get_boolean(rawEnv, uc::releaseTensor(env, Napi::Value(env, argv[0])), &result);
  return result;
}

// disposeMany(ids): frees many handles in one crossing (scopes end this way).
static Napi::Value DisposeMany(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throw Napi::TypeError::New(env, "disposeMany: array of tensor ids expected");
  auto arr = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) uc::releaseTensor(env, arr[i]);
  return env.Undefined();
}

static Napi::Value Memory(const Napi::CallbackInfo& info) {
  auto s = uc::memoryStats();
  auto o = Napi::Object::New(info.Env());
  o.Set("tensors", Napi::Number::New(info.Env(), static_cast<double>(s.liveTensors)));
  o.Set("bytes", Napi::Number::New(info.Env(), static_cast<double>(s.liveBytes)));
  o.Set("storages", Napi::Number::New(info.Env(), static_cast<double>(s.liveStorages)));
  return o;
}

void registerHandleFns(Napi::Env env, Napi::Object exports) {
  napi_value dispose;
  napi_create_function(env, "dispose", NAPI_AUTO_LENGTH, DisposeRaw, nullptr, &dispose);
  exports.Set("dispose", Napi::Value(env, dispose));
  exports.Set("disposeMany", Napi::Function::New(env, DisposeMany));
  exports.Set("memory", Napi::Function::New(env, Memory));
}
