// Process groups over PyTorch's c10d: a TCPStore rendezvous and Gloo (CPU) or NCCL (CUDA)
// collectives. Calls block until the collective completes or its timeout expires.
#include "common.h"
#include <cstdlib>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace {

// The object that runs the collectives (docs/engine.md, "libtorch versions"). In libtorch 1.13, ProcessGroupGloo and
// ProcessGroupNCCL are ProcessGroups. From 2.0 they are c10d::Backends, which a ProcessGroup
// wraps one per device type for Python's dispatch; every collective used here (allreduce,
// broadcast, allgather, alltoall_base, _allgather_base, _reduce_scatter_base, barrier,
// getBackendName) is a Backend method, so the backend is held directly.
#if TORCH_VERSION_MAJOR >= 2
using Collectives = c10d::Backend;
#else
using Collectives = c10d::ProcessGroup;
#endif

struct GroupHandle {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<Collectives> pg;
  int rank;
  int size;
  // The master's address (a sub-group picks its Gloo device from it, as its parent did).
  std::string host;
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

// The collectives of one group over `store` (rank `rank` of `size`).
GroupHandle* newGroup(Napi::Env env, c10::intrusive_ptr<c10d::Store> store, const std::string& host, int rank, int size, const std::string& backend, std::chrono::milliseconds timeout) {
  auto* g = new GroupHandle{store, {}, rank, size, host};
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
  return g;
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
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 2)
  // From 2.4 the store defaults to its libuv server, which builds without libuv (Debian
  // trixie's 2.6) reject at run time; the classic server is in every build (docs/engine.md,
  // "libtorch versions"). A world of processes on one machine does not need libuv's scaling.
  opts.useLibUV = false;
#endif
  auto store = c10::make_intrusive<c10d::TCPStore>(host, opts);

  return Napi::External<GroupHandle>::New(env, newGroup(env, store, host, rank, size, backend, timeout), [](Napi::Env, GroupHandle* h) { delete h; });
  UC_GUARD_END(env)
}

// createSubGroup(parent, {prefix, rank, worldSize, backend, timeoutMs}): a group of some of the
// parent's ranks that meets through the parent's store under `prefix` (a c10d PrefixStore, as
// torch.distributed.new_group does), so it needs no server of its own on any machine (hybrid
// sharding over several nodes, docs/sharding.md 5). Every member calls it with the same prefix.
Napi::Value CreateSubGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto* parent = unwrapGroup(info[0]);
  auto o = info[1].As<Napi::Object>();
  std::string prefix = o.Get("prefix").As<Napi::String>().Utf8Value();
  int rank = o.Get("rank").As<Napi::Number>().Int32Value();
  int size = o.Get("worldSize").As<Napi::Number>().Int32Value();
  std::string backend = o.Get("backend").As<Napi::String>().Utf8Value();
  auto timeout = std::chrono::milliseconds(o.Get("timeoutMs").As<Napi::Number>().Int64Value());
  auto store = c10::make_intrusive<c10d::PrefixStore>(prefix, parent->store);
  return Napi::External<GroupHandle>::New(env, newGroup(env, store, parent->host, rank, size, backend, timeout), [](Napi::Env, GroupHandle* h) { delete h; });
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

// Checks the flat buffers of reduceScatter/allGatherInto: 1-D, contiguous, same dtype and
// device, the whole buffer worldSize times the shard (docs/sharding.md section 2).
void checkFlatPair(Napi::Env env, const GroupHandle* g, const at::Tensor& whole, const at::Tensor& shard) {
  if (whole.dim() != 1 || shard.dim() != 1 || !whole.is_contiguous() || !shard.is_contiguous()) {
    throw Napi::TypeError::New(env, "the flat buffers must be 1-D contiguous tensors");
  }
  if (whole.scalar_type() != shard.scalar_type() || whole.device() != shard.device()) {
    throw Napi::TypeError::New(env, "the flat buffers must have the same dtype and device");
  }
  if (whole.numel() != shard.numel() * g->size) {
    throw Napi::TypeError::New(env, "the whole buffer has " + std::to_string(whole.numel()) + " elements, expected worldSize (" +
                                        std::to_string(g->size) + ") x shard (" + std::to_string(shard.numel()) + ")");
  }
}

// reduceScatter(group, input [W*S], output [S], accumulate): output (+)= sum over ranks r of
// rank r's input[rank*S, (rank+1)*S). NCCL reduces natively. Gloo in libtorch 1.13 has no
// reduce_scatter, so the chunks are exchanged with one alltoall (the same bytes a ring
// reduce-scatter sends) and added here in rank order: the sum is then the same, to the bit,
// whatever the world size (docs/sharding.md section 2).
Napi::Value ReduceScatter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto* g = unwrapGroup(info[0]);
  at::Tensor input = uc::unwrapTensor(info[1], "input");
  at::Tensor output = uc::unwrapTensor(info[2], "output");
  bool accumulate = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  checkFlatPair(env, g, input, output);
  const int64_t S = output.numel();
  at::NoGradGuard noGrad;
  if (g->pg->getBackendName() == "nccl") {
    at::Tensor out = accumulate ? at::empty_like(output) : output;
    c10d::ReduceScatterOptions opts;
    g->pg->_reduce_scatter_base(out, input, opts)->wait();
    if (accumulate) output.add_(out);
  } else {
    at::Tensor recv = at::empty_like(input);
    std::vector<int64_t> even;
    g->pg->alltoall_base(recv, input, even, even)->wait();
    int first = 0;
    if (!accumulate) {
      output.copy_(recv.narrow(0, 0, S));
      first = 1;
    }
    for (int r = first; r < g->size; ++r) output.add_(recv.narrow(0, r * S, S));
  }
  return env.Undefined();
  UC_GUARD_END(env)
}

// A collective in flight: the Work and the tensors it writes (kept alive until wait).
struct WorkHandle {
  c10::intrusive_ptr<c10d::Work> work;
  std::vector<at::Tensor> tensors;
};

c10::intrusive_ptr<c10d::Work> startAllGatherInto(GroupHandle* g, at::Tensor& input, at::Tensor& output) {
  if (g->pg->getBackendName() == "nccl") return g->pg->_allgather_base(output, input);
  // Gloo has no _allgather_base: gather into views of the flat output (Gloo copies each
  // rank's part into its view; no extra traffic).
  std::vector<std::vector<at::Tensor>> outputs(1);
  const int64_t S = input.numel();
  for (int r = 0; r < g->size; ++r) outputs[0].push_back(output.narrow(0, r * S, S));
  std::vector<at::Tensor> inputs{input};
  return g->pg->allgather(outputs, inputs);
}

// allGatherInto(group, input [S], output [W*S], async): output[r*S, (r+1)*S) <- rank r's input.
// With async, returns a work handle for waitWork (the gather runs while this thread computes).
Napi::Value AllGatherInto(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto* g = unwrapGroup(info[0]);
  at::Tensor input = uc::unwrapTensor(info[1], "input");
  at::Tensor output = uc::unwrapTensor(info[2], "output");
  bool async = info[3].IsBoolean() && info[3].As<Napi::Boolean>().Value();
  checkFlatPair(env, g, output, input);
  auto work = startAllGatherInto(g, input, output);
  if (!async) {
    work->wait();
    return env.Undefined();
  }
  auto* h = new WorkHandle{work, {input, output}};
  return Napi::External<WorkHandle>::New(env, h, [](Napi::Env, WorkHandle* w) {
    // an abandoned collective is finished before its tensors can go (never freed under Gloo's feet)
    if (w->work) {
      try { w->work->wait(); } catch (...) {}
    }
    delete w;
  });
  UC_GUARD_END(env)
}

// waitWork(work): blocks until the collective has completed (or failed / timed out).
Napi::Value WaitWork(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  if (!info[0].IsExternal()) throw Napi::TypeError::New(env, "work handle expected");
  auto* w = info[0].As<Napi::External<WorkHandle>>().Data();
  if (!w->work) throw Napi::Error::New(env, "this collective was already waited for");
  auto work = w->work;
  w->work.reset();
  w->tensors.clear();
  work->wait();
  return env.Undefined();
  UC_GUARD_END(env)
}

// resizeStorage(tensor, nbytes): frees (0) or reallocates a tensor's storage in place, so every
// view of it (the parameters of a sharded layer, the copies autograd saved of them) loses or
// regains its memory at once; contents after a regrow are undefined until written. This is how
// fully sharded parameters are dropped between uses (docs/sharding.md section 3).
Napi::Value ResizeStorage(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  const at::Tensor& t = uc::unwrapTensor(info[0], "tensor");
  int64_t nbytes = info[1].As<Napi::Number>().Int64Value();
  if (nbytes < 0) throw Napi::TypeError::New(env, "nbytes must be >= 0");
  if (!t.has_storage()) throw Napi::TypeError::New(env, "the tensor has no storage");
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  if (static_cast<int64_t>(s->nbytes()) == nbytes) return env.Undefined();
  at::Allocator* alloc = s->allocator();
  if (alloc == nullptr) throw Napi::TypeError::New(env, "the tensor's storage has no allocator (external memory)");
  if (nbytes == 0) {
    s->set_data_ptr_noswap(at::DataPtr(nullptr, s->device()));
  } else {
    s->set_data_ptr_noswap(alloc->allocate(static_cast<size_t>(nbytes)));
  }
  s->set_nbytes(static_cast<size_t>(nbytes));
  return env.Undefined();
  UC_GUARD_END(env)
}

// storageBytes(tensor): the bytes its storage holds now.
Napi::Value StorageBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  const at::Tensor& t = uc::unwrapTensor(info[0], "tensor");
  return Napi::Number::New(env, t.has_storage() ? static_cast<double>(t.storage().nbytes()) : 0.0);
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
  exports.Set("createSubGroup", Napi::Function::New(env, CreateSubGroup));
  exports.Set("allReduce", Napi::Function::New(env, AllReduce));
  exports.Set("broadcast", Napi::Function::New(env, Broadcast));
  exports.Set("allGather", Napi::Function::New(env, AllGather));
  exports.Set("reduceScatter", Napi::Function::New(env, ReduceScatter));
  exports.Set("allGatherInto", Napi::Function::New(env, AllGatherInto));
  exports.Set("waitWork", Napi::Function::New(env, WaitWork));
  exports.Set("resizeStorage", Napi::Function::New(env, ResizeStorage));
  exports.Set("storageBytes", Napi::Function::New(env, StorageBytes));
  exports.Set("barrier", Napi::Function::New(env, Barrier));
  exports.Set("destroyGroup", Napi::Function::New(env, DestroyGroup));
}
