// Process groups over PyTorch's c10d: a TCPStore rendezvous and Gloo (CPU) or NCCL (CUDA)
// collectives. Calls block until the collective completes or its timeout expires.
#include "common.h"
#include <cstdlib>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace {

struct GroupHandle {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank;
  int size;
};

GroupHandle* unwrapGroup(const Napi::Value& v) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), "process group expected");
  auto* g = v.As<Napi::External<GroupHandle>>().Data();
  if (!g->pg) throw Napi::Error::New(v.Env(), "process group was destroyed");
  return g;
}

std::vector<at::Tensor> readTensors(Napi::Env env, const Napi::Value& v, const char* what) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, std::string(what) + " must be an array of Tensors");
  auto arr = v.As<Napi::Array>();
  std::vector<at::Tensor> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) out.push_back(uc::unwrapTensor(arr[i], what));
  return out;
}

// createGroup({host, port, rank, worldSize, backend, timeoutMs})
Napi::Value CreateGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto o = info[0].As<Napi::Object>();
  std::string host = o.Get("host").As<Napi::String>().Utf8Value();
  int port = o.Get("port").As<Napi::Number>().Int32Value();
  int rank = o.Get("rank").As<Napi::Number>().Int32Value();
  int size = o.Get("worldSize").As<Napi::Number>().Int32Value();
  std::string backend = o.Get("backend").As<Napi::String>().Utf8Value();
  auto timeout = std::chrono::milliseconds(o.Get("timeoutMs").As<Napi::Number>().Int64Value());

  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(port);
  opts.isServer = rank == 0;
  opts.numWorkers = size;
  opts.waitWorkers = false;
  opts.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(host, opts);

  auto* g = new GroupHandle{store, {}, rank, size};
  if (backend == "gloo") {
    auto gopts = c10d::ProcessGroupGloo::Options::create(timeout);
    // The device is this rank's own network interface: GLOO_SOCKET_IFNAME when set (as in
    // PyTorch), the loopback when the master is on this machine, else the hostname's address.
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    bool local = host == "localhost" || host.rfind("127.", 0) == 0;
    if (ifname && *ifname) gopts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (local) gopts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
    else gopts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, gopts);
  } else if (backend == "nccl") {
#ifdef USE_C10D_NCCL
    auto nopts = c10d::ProcessGroupNCCL::Options::create();
    nopts->timeout = timeout;
    g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, nopts);
#else
    delete g;
    throw Napi::Error::New(env, "the nccl backend needs a libtorch built with CUDA (set LIBTORCH and rebuild)");
#endif
  } else {
    delete g;
    throw Napi::TypeError::New(env, "unknown backend '" + backend + "' (expected 'gloo' or 'nccl')");
  }
  return Napi::External<GroupHandle>::New(env, g, [](Napi::Env, GroupHandle* h) { delete h; });
  UC_GUARD_END(env)
}

c10d::ReduceOp parseReduce(Napi::Env env, const std::string& s) {
  if (s == "sum" || s == "avg") return c10d::ReduceOp(c10d::ReduceOp::SUM);
  if (s == "max") return c10d::ReduceOp(c10d::ReduceOp::MAX);
  if (s == "min") return c10d::ReduceOp(c10d::ReduceOp::MIN);
  if (s == "product") return c10d::ReduceOp(c10d::ReduceOp::PRODUCT);
  throw Napi::TypeError::New(env, "unknown reduce op '" + s + "' (sum, avg, max, min, product)");
}

// allReduce(group, tensors, op): in place on every tensor. 'avg' is a sum divided by the
// world size, since Gloo has no native average.
Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto* g = unwrapGroup(info[0]);
  auto tensors = readTensors(env, info[1], "tensors");
  std::string opName = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "sum";
  c10d::AllreduceOptions opts;
  opts.reduceOp = parseReduce(env, opName);
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    g->pg->allreduce(one, opts)->wait();
    if (opName == "avg") t.div_(g->size);
  }
  return env.Undefined();
  UC_GUARD_END(env)
}

Napi::Value Broadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto* g = unwrapGroup(info[0]);
  auto tensors = readTensors(env, info[1], "tensors");
  c10d::BroadcastOptions opts;
  opts.rootRank = info[2].As<Napi::Number>().Int32Value();
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    g->pg->broadcast(one, opts)->wait();
  }
  return env.Undefined();
  UC_GUARD_END(env)
}

// allGather(group, tensor) -> one new tensor per rank.
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto* g = unwrapGroup(info[0]);
  at::Tensor input = uc::unwrapTensor(info[1], "tensor");
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int i = 0; i < g->size; ++i) outputs[0].push_back(at::empty_like(input));
  std::vector<at::Tensor> inputs{input};
  g->pg->allgather(outputs, inputs)->wait();
  auto arr = Napi::Array::New(env, g->size);
  for (int i = 0; i < g->size; ++i) arr.Set(static_cast<uint32_t>(i), uc::wrapTensor(env, outputs[0][i]));
  return arr;
  UC_GUARD_END(env)
}

Napi::Value Barrier(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  unwrapGroup(info[0])->pg->barrier()->wait();
  return env.Undefined();
  UC_GUARD_END(env)
}

Napi::Value DestroyGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  if (!info[0].IsExternal()) throw Napi::TypeError::New(env, "process group expected");
  auto* g = info[0].As<Napi::External<GroupHandle>>().Data();
  g->pg.reset();
  g->store.reset();
  return env.Undefined();
  UC_GUARD_END(env)
}

}  // namespace

void registerDistributedFns(Napi::Env env, Napi::Object exports) {
  exports.Set("createGroup", Napi::Function::New(env, CreateGroup));
  exports.Set("allReduce", Napi::Function::New(env, AllReduce));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
  exports.Set("allGather", Napi::Function::New(env, AllGather));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("destroyGroup", Napi::Function::New(env, DestroyGroup));
}
