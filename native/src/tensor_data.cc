// Tensor creation from JS memory and read-back into JS memory (always copies, so JS and
// libtorch never share a buffer whose lifetime one side cannot see).
#include "common.h"
#include <cstring>

namespace {

std::vector<int64_t> readShape(Napi::Env env, const Napi::Value& v) {
  if (!v.IsArray()) throw Napi::TypeError::New(env, "shape must be an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> shape(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr[i];
    if (!e.IsNumber()) throw Napi::TypeError::New(env, "shape must be an array of integers");
    double d = e.As<Napi::Number>().DoubleValue();
    if (d < 0 || d != static_cast<double>(static_cast<int64_t>(d)))
      throw Napi::TypeError::New(env, "shape entries must be non-negative integers, got " + std::to_string(d));
    shape[i] = static_cast<int64_t>(d);
  }
  return shape;
}

// fromBuffer(bytes: TypedArray, dtype: string, shape: number[], device?: string)
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "fromBuffer: data must be a typed array");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "fromBuffer: dtype must be a string");
  auto ta = info[0].As<Napi::TypedArray>();
  at::ScalarType dtype;
  try {
    dtype = uc::parseDtype(info[1].As<Napi::String>().Utf8Value());
  } catch (const std::invalid_argument& e) {
    throw Napi::TypeError::New(env, std::string("fromBuffer: ") + e.what());
  }
  auto shape = readShape(env, info[2]);
  int64_t numel = 1;
  for (auto s : shape) numel *= s;
  size_t need = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (ta.ByteLength() != need) {
    throw Napi::Error::New(env, "fromBuffer: " + std::to_string(ta.ByteLength()) + " bytes given, shape and dtype " +
                                    uc::dtypeName(dtype) + " need " + std::to_string(need));
  }
  at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dtype));
  if (need > 0) {
    const uint8_t* src = static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
    std::memcpy(t.data_ptr(), src, need);
  }
  if (info.Length() > 3 && info[3].IsString()) {
    auto dev = uc::parseDevice(info[3].As<Napi::String>().Utf8Value());
    if (!dev.is_cpu()) t = t.to(dev);
  }
  return uc::wrapTensor(env, std::move(t));
  UC_GUARD_END(env)
}

// toBuffer(t) -> ArrayBuffer with the contiguous CPU bytes of t.
Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  at::Tensor t = uc::unwrapTensor(info[0], "tensor").detach();
  if (!t.device().is_cpu()) t = t.to(at::kCPU);
  t = t.contiguous();
  size_t bytes = t.numel() * t.element_size();
  auto buf = Napi::ArrayBuffer::New(env, bytes);
  if (bytes > 0) std::memcpy(buf.Data(), t.data_ptr(), bytes);
  return buf;
  UC_GUARD_END(env)
}

// meta(t) -> [dtype, device, requiresGrad, ...shape]: one call for everything a view needs.
Napi::Value Meta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = uc::unwrapTensor(info[0], "tensor");
  auto arr = Napi::Array::New(env, 3 + t.dim());
  arr.Set(0u, uc::dtypeName(t.scalar_type()));
  arr.Set(1u, t.device().str());
  arr.Set(2u, t.requires_grad());
  for (int64_t i = 0; i < t.dim(); ++i) arr.Set(static_cast<uint32_t>(3 + i), static_cast<double>(t.size(i)));
  return arr;
}

Napi::Value Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = uc::unwrapTensor(info[0], "tensor");
  auto arr = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); ++i) arr.Set(static_cast<uint32_t>(i), static_cast<double>(t.size(i)));
  return arr;
}

Napi::Value Dtype(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), uc::dtypeName(uc::unwrapTensor(info[0], "tensor").scalar_type()));
}

Napi::Value DeviceOf(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), uc::unwrapTensor(info[0], "tensor").device().str());
}

Napi::Value Numel(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(uc::unwrapTensor(info[0], "tensor").numel()));
}

// item(t) -> number | boolean for a one-element tensor.
Napi::Value Item(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  const at::Tensor& t = uc::unwrapTensor(info[0], "tensor");
  auto s = t.item();
  if (s.isBoolean()) return Napi::Boolean::New(env, s.toBool());
  if (s.isIntegral(false)) return Napi::Number::New(env, static_cast<double>(s.toLong()));
  return Napi::Number::New(env, s.toDouble());
  UC_GUARD_END(env)
}

// toString(t) -> libtorch's own printout, used for previews of small tensors.
Napi::Value ToStringFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  std::ostringstream ss;
  ss << uc::unwrapTensor(info[0], "tensor");
  return Napi::String::New(env, ss.str());
  UC_GUARD_END(env)
}

}  // namespace

void registerDataFns(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("meta", Napi::Function::New(env, Meta));
  exports.Set("shape", Napi::Function::New(env, Shape));
  exports.Set("dtype", Napi::Function::New(env, Dtype));
  exports.Set("device", Napi::Function::New(env, DeviceOf));
  exports.Set("numel", Napi::Function::New(env, Numel));
  exports.Set("item", Napi::Function::New(env, Item));
  exports.Set("toString", Napi::Function::New(env, ToStringFn));
}
