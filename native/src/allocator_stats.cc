// Allocated-bytes statistics, current and peak, as torch.cuda.memory_allocated and
// max_memory_allocated report them (docs/planner.md 4: what the planner is checked against).
// CUDA: the caching allocator's own counters. CPU: libtorch keeps none, so trackCpu() installs a
// counting allocator in front of the default one (c10::SetCPUAllocator); storages allocated
// before that are not counted, and neither are the BLAS library's own scratch buffers.
#include "common.h"
#include <torch/version.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <atomic>
#ifdef UNICHAR_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace {

std::atomic<int64_t> gCpuCurrent{0};
std::atomic<int64_t> gCpuPeak{0};
std::atomic<bool> gCpuTracking{false};

// Each block carries its size in a header in front of the data, and the DataPtr's context is
// the data pointer itself: libtorch's raw_allocate (used by oneDNN's bfloat16 kernels, among
// others) requires context == data and frees through raw_deleter().
constexpr size_t kHeader = 64;  // keeps the data at c10's 64-byte alignment

void countedFree(void* data) {
  if (data == nullptr) return;
  char* base = static_cast<char*>(data) - kHeader;
  size_t bytes = *reinterpret_cast<size_t*>(base);
  gCpuCurrent.fetch_sub(static_cast<int64_t>(bytes));
  c10::free_cpu(base);
}

void raisePeak(int64_t now) {
  int64_t peak = gCpuPeak.load();
  while (now > peak && !gCpuPeak.compare_exchange_weak(peak, now)) {
  }
}

struct CountingCpuAllocator final : at::Allocator {
  at::DataPtr alloc(size_t n) const {
    char* base = static_cast<char*>(c10::alloc_cpu(n + kHeader));
    *reinterpret_cast<size_t*>(base) = n;
    void* data = base + kHeader;
    raisePeak(gCpuCurrent.fetch_add(static_cast<int64_t>(n)) + static_cast<int64_t>(n));
    return {data, data, &countedFree, at::Device(at::DeviceType::CPU)};
  }
  at::DeleterFnPtr raw_deleter() const override { return &countedFree; }
  // The Allocator interface lost its const and gained copy_data in PyTorch 2.3.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  at::DataPtr allocate(size_t n) override { return alloc(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  at::DataPtr allocate(size_t n) const override { return alloc(n); }
#endif
};

CountingCpuAllocator gCounting;

Napi::Value TrackCpu(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  if (!gCpuTracking.exchange(true)) c10::SetCPUAllocator(&gCounting, /*priority=*/100);
  return env.Undefined();
  UC_GUARD_END(env)
}

// { current, peak } in bytes for 'cpu' or 'cuda[:i]'; for the CPU null until trackCpu().
Napi::Value AllocatorStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::Device device = uc::parseDevice(info[0].As<Napi::String>().Utf8Value());
  int64_t current = 0, peak = 0;
  if (device.is_cpu()) {
    if (!gCpuTracking.load()) return env.Null();
    current = gCpuCurrent.load();
    peak = gCpuPeak.load();
  } else if (device.is_cuda()) {
#ifdef UNICHAR_CUDA
    auto s = c10::cuda::CUDACachingAllocator::getDeviceStats(device.has_index() ? device.index() : 0);
    const auto& b = s.allocated_bytes[static_cast<size_t>(c10::cuda::CUDACachingAllocator::StatType::AGGREGATE)];
    current = b.current;
    peak = b.peak;
#else
    throw Napi::Error::New(env, "allocatorStats: this addon was built without CUDA");
#endif
  } else {
    throw Napi::Error::New(env, "allocatorStats: only 'cpu' and 'cuda' devices keep statistics");
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("current", Napi::Number::New(env, static_cast<double>(current)));
  o.Set("peak", Napi::Number::New(env, static_cast<double>(peak)));
  return o;
  UC_GUARD_END(env)
}

// Starts a new peak at the current value.
Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::Device device = uc::parseDevice(info[0].As<Napi::String>().Utf8Value());
  if (device.is_cpu()) {
    gCpuPeak.store(gCpuCurrent.load());
  } else if (device.is_cuda()) {
#ifdef UNICHAR_CUDA
    c10::cuda::CUDACachingAllocator::resetPeakStats(device.has_index() ? device.index() : 0);
#else
    throw Napi::Error::New(env, "resetPeakAllocated: this addon was built without CUDA");
#endif
  } else {
    throw Napi::Error::New(env, "resetPeakAllocated: only 'cpu' and 'cuda' devices keep statistics");
  }
  return env.Undefined();
  UC_GUARD_END(env)
}

}  // namespace

void registerAllocatorStatsFns(Napi::Env env, Napi::Object exports) {
  exports.Set("trackCpuAllocations", Napi::Function::New(env, TrackCpu));
  exports.Set("allocatorStats", Napi::Function::New(env, AllocatorStats));
  exports.Set("resetPeakAllocated", Napi::Function::New(env, ResetPeak));
}
