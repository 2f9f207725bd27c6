// Activation checkpointing (docs/precision.md section 3): a custom autograd node standing for a
// piece of JS code (a decoder layer) that ran without recording a graph. Its backward asks the JS
// thread to run the piece again with gradients on and to backpropagate through it, and returns
// the gradients of the piece's inputs.
//
// libtorch runs a node's backward on whatever thread owns its device's queue (the caller's for
// CPU, a device thread for CUDA), while JS may only be called on its own thread. So while any
// checkpoint node is alive, backward() and grad() run the engine on a helper thread and the JS
// thread serves the nodes' recompute requests until the engine is done.
#include "common.h"
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <ATen/Parallel.h>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace uc {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Request {
  int64_t id;
  variable_list saved;
  variable_list grads;
  variable_list result;
  std::string error;
  bool failed = false;
  bool done = false;
};

// One per JS thread: the recompute callback, the queue of pending requests, the ids of nodes
// that are gone (their JS closures can be dropped), and the count of live nodes.
struct Host {
  Napi::Env env;
  Napi::FunctionReference recompute;  // (id, savedIds, gradIds) -> (gradId | null)[]
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Request*> queue;
  std::vector<int64_t> released;
  std::atomic<int64_t> live{0};
  explicit Host(Napi::Env e) : env(e) {}
};

thread_local Host* tHost = nullptr;  // never freed: it lives as long as its JS thread

// Destroyed with the node's context (on any thread): marks the node's id as released.
struct Token : torch::CustomClassHolder {
  Host* host;
  int64_t id;
  Token(Host* h, int64_t i) : host(h), id(i) { host->live.fetch_add(1); }
  ~Token() override {
    {
      std::lock_guard<std::mutex> lk(host->mu);
      host->released.push_back(id);
    }
    host->live.fetch_sub(1);
  }
};

// Runs the JS recompute of one request on the JS thread and marks it done.
void serve(Host* h, Request* r) {
  Napi::Env env = h->env;
  try {
    Napi::HandleScope scope(env);
    auto saved = Napi::Array::New(env, r->saved.size());
    for (size_t i = 0; i < r->saved.size(); ++i) saved.Set(static_cast<uint32_t>(i), wrapTensor(env, r->saved[i]));
    auto grads = Napi::Array::New(env, r->grads.size());
    for (size_t i = 0; i < r->grads.size(); ++i) grads.Set(static_cast<uint32_t>(i), wrapTensor(env, r->grads[i]));
    Napi::Value res = h->recompute.Call({Napi::Number::New(env, static_cast<double>(r->id)), saved, grads});
    if (!res.IsArray()) throw std::runtime_error("checkpoint recompute must return an array");
    auto arr = res.As<Napi::Array>();
    if (arr.Length() != r->saved.size()) throw std::runtime_error("checkpoint recompute returned the wrong number of gradients");
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr[i];
      if (v.IsNull() || v.IsUndefined()) {
        r->result.emplace_back();
      } else {
        r->result.push_back(unwrapTensor(v, "gradient"));
        releaseTensor(env, v);  // the JS side kept it for us
      }
    }
  } catch (const Napi::Error& e) {
    r->failed = true;
    r->error = e.Message();
  } catch (const c10::Error& e) {
    r->failed = true;
    r->error = e.what_without_backtrace();
  } catch (const std::exception& e) {
    r->failed = true;
    r->error = e.what();
  }
  {
    std::lock_guard<std::mutex> lk(h->mu);
    r->done = true;
  }
  h->cv.notify_all();
}

struct CheckpointFn : public torch::autograd::Function<CheckpointFn> {
  static variable_list forward(AutogradContext* ctx, int64_t hostBits, int64_t id, at::TensorList inputs, const variable_list* outputs) {
    ctx->set_materialize_grads(false);
    ctx->save_for_backward(inputs.vec());
    Host* host = reinterpret_cast<Host*>(hostBits);
    ctx->saved_data["host"] = hostBits;
    ctx->saved_data["id"] = id;
    ctx->saved_data["token"] = c10::IValue::make_capsule(c10::make_intrusive<Token>(host, id));
    variable_list out;
    for (const auto& o : *outputs) out.push_back(o.is_view() ? o.clone() : o);
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    Host* host = reinterpret_cast<Host*>(ctx->saved_data["host"].toInt());
    Request req;
    req.id = ctx->saved_data["id"].toInt();
    req.saved = ctx->get_saved_variables();
    req.grads = std::move(grads);
    if (tHost == host) {
      serve(host, &req);  // already on the JS thread
    } else {
      std::unique_lock<std::mutex> lk(host->mu);
      host->queue.push_back(&req);
      host->cv.notify_all();
      host->cv.wait(lk, [&] { return req.done; });
    }
    if (req.failed) throw std::runtime_error("activation checkpoint recompute failed: " + req.error);
    // one entry per forward argument: hostBits, id, the inputs, outputs
    variable_list out;
    out.emplace_back();
    out.emplace_back();
    for (auto& g : req.result) out.push_back(g);
    out.emplace_back();
    return out;
  }
};

}  // namespace

// Runs an autograd engine call; while checkpoint nodes are alive, on a helper thread with this
// (the JS) thread serving recompute requests until it is done.
void runBackwardJob(const std::function<void()>& job) {
  Host* h = tHost;
  if (h == nullptr || h->live.load() == 0) {
    job();
    return;
  }
  std::exception_ptr err;
  bool finished = false;
  std::thread worker([&] {
    at::init_num_threads();  // the same intra-op thread count as the JS thread
    try {
      job();
    } catch (...) {
      err = std::current_exception();
    }
    {
      std::lock_guard<std::mutex> lk(h->mu);
      finished = true;
    }
    h->cv.notify_all();
  });
  for (;;) {
    Request* r = nullptr;
    {
      std::unique_lock<std::mutex> lk(h->mu);
      h->cv.wait(lk, [&] { return finished || !h->queue.empty(); });
      if (!h->queue.empty()) {
        r = h->queue.front();
        h->queue.pop_front();
      } else {
        break;  // finished, nothing left to serve
      }
    }
    serve(h, r);
  }
  worker.join();
  if (err) std::rethrow_exception(err);
}

namespace {

// checkpointInit(recompute): registers this JS thread's recompute callback (once).
Napi::Value CheckpointInit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) throw Napi::TypeError::New(env, "checkpointInit: recompute must be a function");
  if (tHost == nullptr) tHost = new Host(env);
  tHost->recompute = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

// checkpointApply(id, inputs, outputs) -> outputs attached to a new checkpoint node.
Napi::Value CheckpointApply(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  if (tHost == nullptr) throw Napi::Error::New(env, "checkpointApply: checkpointInit was not called on this thread");
  int64_t id = info[0].As<Napi::Number>().Int64Value();
  std::vector<at::Tensor> inputs;
  auto ins = info[1].As<Napi::Array>();
  for (uint32_t i = 0; i < ins.Length(); ++i) inputs.push_back(unwrapTensor(ins.Get(i), "checkpoint input"));
  variable_list outputs;
  auto outs = info[2].As<Napi::Array>();
  for (uint32_t i = 0; i < outs.Length(); ++i) outputs.push_back(unwrapTensor(outs.Get(i), "checkpoint output"));
  auto wrapped = CheckpointFn::apply(reinterpret_cast<int64_t>(tHost), id, at::TensorList(inputs), &outputs);
  auto arr = Napi::Array::New(env, wrapped.size());
  for (size_t i = 0; i < wrapped.size(); ++i) arr.Set(static_cast<uint32_t>(i), wrapTensor(env, wrapped[i]));
  return arr;
  UC_GUARD_END(env)
}

// checkpointReleased() -> ids of nodes destroyed since the last call.
Napi::Value CheckpointReleased(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<int64_t> ids;
  if (tHost) {
    std::lock_guard<std::mutex> lk(tHost->mu);
    ids.swap(tHost->released);
  }
  auto arr = Napi::Array::New(env, ids.size());
  for (size_t i = 0; i < ids.size(); ++i) arr.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(ids[i])));
  return arr;
}

Napi::Value CheckpointLive(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), tHost ? static_cast<double>(tHost->live.load()) : 0);
}

}  // namespace
}  // namespace uc

void registerCheckpointFns(Napi::Env env, Napi::Object exports) {
  exports.Set("checkpointInit", Napi::Function::New(env, uc::CheckpointInit));
  exports.Set("checkpointApply", Napi::Function::New(env, uc::CheckpointApply));
  exports.Set("checkpointReleased", Napi::Function::New(env, uc::CheckpointReleased));
  exports.Set("checkpointLive", Napi::Function::New(env, uc::CheckpointLive));
}
