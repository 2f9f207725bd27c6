// Generic operator calls through the c10 dispatcher: an operator is looked up once by name
// and overload, its argument kinds are read from its schema, and every later call converts
// JS arguments by those kinds and runs callBoxed (so autograd, devices and dtypes all come
// from libtorch).
#include "common.h"
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/jit_type.h>
#include <optional>
#include <vector>

namespace uc {
namespace {

enum class Kind : uint8_t {
  Tensor, TensorList, OptTensorList, Int, IntList, Float, FloatList, Bool, BoolList,
  Scalar, ScalarType, Layout, Device, MemoryFormat, Str, Generator, Unsupported
};

struct ArgSpec {
  std::string name;
  Kind kind;
  bool optional;
  std::optional<c10::IValue> defaultValue;
};

struct OpEntry {
  c10::OperatorHandle handle;
  std::string label;  // "aten::add.Tensor", for messages
  std::vector<ArgSpec> args;
  std::vector<bool> returnIsWriteAlias;  // in-place results: JS returns the argument itself
};

// Per JS thread, like the handle table: ids come from opId() calls made on that thread.
thread_local std::vector<OpEntry> gOps;

bool isTensorType(const c10::TypePtr& t) { return t->kind() == c10::TypeKind::TensorType; }

Kind kindOf(const c10::TypePtr& type, bool& optional) {
  c10::TypePtr t = type;
  optional = false;
  if (auto o = t->cast<c10::OptionalType>()) {
    optional = true;
    t = o->getElementType();
  }
  switch (t->kind()) {
    case c10::TypeKind::TensorType: return Kind::Tensor;
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType: return Kind::Int;
    case c10::TypeKind::FloatType: return Kind::Float;
    case c10::TypeKind::BoolType: return Kind::Bool;
    case c10::TypeKind::NumberType: return Kind::Scalar;
    case c10::TypeKind::ScalarTypeType: return Kind::ScalarType;
    case c10::TypeKind::LayoutType: return Kind::Layout;
    case c10::TypeKind::MemoryFormatType: return Kind::MemoryFormat;
    case c10::TypeKind::DeviceObjType: return Kind::Device;
    case c10::TypeKind::StringType: return Kind::Str;
    case c10::TypeKind::GeneratorType: return Kind::Generator;
    case c10::TypeKind::ListType: {
      auto e = t->castRaw<c10::ListType>()->getElementType();
      switch (e->kind()) {
        case c10::TypeKind::TensorType: return Kind::TensorList;
        case c10::TypeKind::OptionalType:
          return isTensorType(e->castRaw<c10::OptionalType>()->getElementType()) ? Kind::OptTensorList
                                                                                 : Kind::Unsupported;
        case c10::TypeKind::IntType:
        case c10::TypeKind::SymIntType: return Kind::IntList;
        case c10::TypeKind::FloatType: return Kind::FloatList;
        case c10::TypeKind::BoolType: return Kind::BoolList;
        default: return Kind::Unsupported;
      }
    }
    default: return Kind::Unsupported;
  }
}

[[noreturn]] void badArg(Napi::Env env, const OpEntry& op, const ArgSpec& a, const char* expected) {
  throw Napi::TypeError::New(env, op.label + ": argument '" + a.name + "' must be " + expected);
}

int64_t toInt64(Napi::Env env, const Napi::Value& v, const OpEntry& op, const ArgSpec& a) {
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (d != static_cast<double>(static_cast<int64_t>(d))) badArg(env, op, a, "an integer");
    return static_cast<int64_t>(d);
  }
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Int64Value(&lossless);
  }
  badArg(env, op, a, "an integer");
}

c10::IValue convertArg(Napi::Env env, const Napi::Value& v, const OpEntry& op, const ArgSpec& a) {
  // One type query per argument: N-API calls are the cost that matters for small ops.
  const napi_valuetype ty = v.Type();
  if (ty == napi_undefined || ty == napi_null) {
    if (ty == napi_undefined && a.defaultValue) return *a.defaultValue;
    if (a.optional) return c10::IValue();
    throw Napi::TypeError::New(env, op.label + ": missing required argument '" + a.name + "'");
  }
  switch (a.kind) {
    case Kind::Tensor:
      if (ty != napi_number) badArg(env, op, a, "a Tensor");
      return tensorAt(env, v.As<Napi::Number>().Uint32Value(), a.name.c_str());
    case Kind::TensorList:
    case Kind::OptTensorList: {
      if (!v.IsArray()) badArg(env, op, a, "an array of Tensors");
      auto arr = v.As<Napi::Array>();
      uint32_t n = arr.Length();
      if (a.kind == Kind::TensorList) {
        c10::List<at::Tensor> list;
        list.reserve(n);
        for (uint32_t i = 0; i < n; ++i) {
          Napi::Value e = arr[i];
          if (!e.IsNumber()) badArg(env, op, a, "an array of Tensors");
          list.push_back(unwrapTensor(e, a.name.c_str()));
        }
        return list;
      }
      c10::List<c10::optional<at::Tensor>> list;
      list.reserve(n);
      for (uint32_t i = 0; i < n; ++i) {
        Napi::Value e = arr[i];
        if (e.IsNull() || e.IsUndefined()) list.push_back(c10::nullopt);
        else if (e.IsNumber()) list.push_back(unwrapTensor(e, a.name.c_str()));
        else badArg(env, op, a, "an array of Tensors or nulls");
      }
      return list;
    }
    case Kind::Int:
      return toInt64(env, v, op, a);
    case Kind::IntList: {
      if (ty == napi_number || ty == napi_bigint) return c10::List<int64_t>({toInt64(env, v, op, a)});
      if (!v.IsArray()) badArg(env, op, a, "an array of integers");
      auto arr = v.As<Napi::Array>();
      std::vector<int64_t> out(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) out[i] = toInt64(env, arr[i], op, a);
      return c10::List<int64_t>(out);
    }
    case Kind::Float:
      if (ty != napi_number) badArg(env, op, a, "a number");
      return v.As<Napi::Number>().DoubleValue();
    case Kind::FloatList: {
      if (!v.IsArray()) badArg(env, op, a, "an array of numbers");
      auto arr = v.As<Napi::Array>();
      std::vector<double> out(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value e = arr[i];
        if (!e.IsNumber()) badArg(env, op, a, "an array of numbers");
        out[i] = e.As<Napi::Number>().DoubleValue();
      }
      return c10::List<double>(out);
    }
    case Kind::Bool:
      if (ty != napi_boolean) badArg(env, op, a, "a boolean");
      return v.As<Napi::Boolean>().Value();
    case Kind::BoolList: {
      if (!v.IsArray()) badArg(env, op, a, "an array of booleans");
      auto arr = v.As<Napi::Array>();
      std::vector<bool> out(arr.Length());
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value e = arr[i];
        if (!e.IsBoolean()) badArg(env, op, a, "an array of booleans");
        out[i] = e.As<Napi::Boolean>().Value();
      }
      c10::List<bool> list;
      for (bool b : out) list.push_back(b);
      return list;
    }
    case Kind::Scalar:
      if (ty == napi_number) {
        double d = v.As<Napi::Number>().DoubleValue();
        // JS has one number type: integral values become integer scalars, as Python ints do.
        if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0)
          return c10::Scalar(static_cast<int64_t>(d));
        return c10::Scalar(d);
      }
      if (ty == napi_boolean) return c10::Scalar(v.As<Napi::Boolean>().Value());
      if (ty == napi_bigint) return c10::Scalar(toInt64(env, v, op, a));
      badArg(env, op, a, "a number or boolean");
    case Kind::ScalarType:
      if (ty != napi_string) badArg(env, op, a, "a dtype name such as 'float32'");
      try {
        return static_cast<int64_t>(parseDtype(v.As<Napi::String>().Utf8Value()));
      } catch (const std::invalid_argument& e) {
        throw Napi::TypeError::New(env, op.label + ": argument '" + a.name + "': " + e.what());
      }
    case Kind::Layout: {
      if (ty != napi_string) badArg(env, op, a, "a layout name ('strided' or 'sparse')");
      auto s = v.As<Napi::String>().Utf8Value();
      if (s == "strided") return static_cast<int64_t>(at::kStrided);
      if (s == "sparse") return static_cast<int64_t>(at::kSparse);
      badArg(env, op, a, "a layout name ('strided' or 'sparse')");
    }
    case Kind::MemoryFormat: {
      if (ty != napi_string) badArg(env, op, a, "'contiguous', 'preserve' or 'channels_last'");
      auto s = v.As<Napi::String>().Utf8Value();
      if (s == "contiguous") return static_cast<int64_t>(at::MemoryFormat::Contiguous);
      if (s == "preserve") return static_cast<int64_t>(at::MemoryFormat::Preserve);
      if (s == "channels_last") return static_cast<int64_t>(at::MemoryFormat::ChannelsLast);
      badArg(env, op, a, "'contiguous', 'preserve' or 'channels_last'");
    }
    case Kind::Device:
      if (ty != napi_string) badArg(env, op, a, "a device name such as 'cpu' or 'cuda:0'");
      return parseDevice(v.As<Napi::String>().Utf8Value());
    case Kind::Str:
      if (ty != napi_string) badArg(env, op, a, "a string");
      return v.As<Napi::String>().Utf8Value();
    case Kind::Generator:
      badArg(env, op, a, "null (explicit generators are not supported; use manualSeed)");
    case Kind::Unsupported:
      break;
  }
  throw Napi::TypeError::New(env, op.label + ": argument '" + a.name + "' has a type the binding does not support");
}

// opName(id) -> "aten::add.Tensor": the operator behind an id, for profiles and messages.
Napi::Value OpName(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) throw Napi::TypeError::New(env, "opName: id must be a number");
  const int64_t id = info[0].As<Napi::Number>().Int64Value();
  if (id < 0 || id >= static_cast<int64_t>(gOps.size())) throw Napi::RangeError::New(env, "opName: no operator has id " + std::to_string(id));
  return Napi::String::New(env, gOps[id].label);
}

Napi::Value OpId(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "opId: name must be a string");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  std::string overload = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
  if (name.find("::") == std::string::npos) name = "aten::" + name;
  auto handle = c10::Dispatcher::singleton().findSchema({name, overload});
  if (!handle) {
    throw Napi::Error::New(env, "unknown operator " + name + (overload.empty() ? "" : "." + overload));
  }
  const auto& schema = handle->schema();
  OpEntry entry{*handle, name + (overload.empty() ? "" : "." + overload), {}, {}};
  for (const auto& arg : schema.arguments()) {
    bool optional;
    Kind k = kindOf(arg.real_type(), optional);
    entry.args.push_back(ArgSpec{arg.name(), k, optional, arg.default_value()});
  }
  for (const auto& ret : schema.returns()) {
    entry.returnIsWriteAlias.push_back(ret.alias_info() && ret.alias_info()->isWrite());
  }
  gOps.push_back(std::move(entry));
  return Napi::Number::New(env, static_cast<double>(gOps.size() - 1));
}

// The hottest entry point, written against raw Node-API: node-addon-api's CallbackInfo and
// exception wrapper cost a measurable share of a 1-element op (bench/README.md, row b).
napi_value CallRaw(napi_env rawEnv, napi_callback_info cbinfo) {
  Napi::Env env(rawEnv);
  constexpr size_t kMaxArgs = 64;
  napi_value argv[kMaxArgs];
  size_t argc = kMaxArgs;
  napi_get_cb_info(rawEnv, cbinfo, &argc, argv, nullptr, nullptr);
  try {
    if (argc == 0 || argc > kMaxArgs) throw Napi::TypeError::New(env, "call: expected an operator id and at most 63 arguments");
    uint32_t id = 0;
    if (napi_get_value_uint32(rawEnv, argv[0], &id) != napi_ok || id >= gOps.size()) throw Napi::Error::New(env, "call: bad operator id");
    const OpEntry& op = gOps[id];
    size_t given = argc - 1;
    if (given > op.args.size()) {
      throw Napi::TypeError::New(env, op.label + ": expected at most " + std::to_string(op.args.size()) +
                                          " arguments, got " + std::to_string(given));
    }
    // One stack reused across calls saves an allocation per op (calls run on the JS thread).
    static thread_local torch::jit::Stack stack;
    stack.clear();
    for (size_t i = 0; i < op.args.size(); ++i) {
      Napi::Value v = i < given ? Napi::Value(env, argv[i + 1]) : env.Undefined();
      stack.push_back(convertArg(env, v, op, op.args[i]));
    }
    op.handle.callBoxed(&stack);
    size_t n = op.returnIsWriteAlias.size();
    Napi::Value result;
    if (n == 0) {
      result = env.Undefined();
    } else if (n == 1) {
      result = op.returnIsWriteAlias[0] ? env.Null() : fromIValue(env, stack[0]);
    } else {
      auto arr = Napi::Array::New(env, n);
      for (size_t i = 0; i < n; ++i) arr.Set(i, op.returnIsWriteAlias[i] ? env.Null() : fromIValue(env, stack[i]));
      result = arr;
    }
    stack.clear();  // drop references now, not at the next call
    return result;
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
  } catch (const c10::Error& e) {
    Napi::Error::New(env, e.what_without_backtrace()).ThrowAsJavaScriptException();
  } catch (const std::exception& e) {
    Napi::Error::New(env, e.what()).ThrowAsJavaScriptException();
  }
  return nullptr;
}

std::string kindName(Kind k) {
  switch (k) {
    case Kind::Tensor: return "Tensor";
    case Kind::TensorList: return "Tensor[]";
    case Kind::OptTensorList: return "Tensor?[]";
    case Kind::Int: return "int";
    case Kind::IntList: return "int[]";
    case Kind::Float: return "float";
    case Kind::FloatList: return "float[]";
    case Kind::Bool: return "bool";
    case Kind::BoolList: return "bool[]";
    case Kind::Scalar: return "Scalar";
    case Kind::ScalarType: return "ScalarType";
    case Kind::Layout: return "Layout";
    case Kind::Device: return "Device";
    case Kind::MemoryFormat: return "MemoryFormat";
    case Kind::Str: return "str";
    case Kind::Generator: return "Generator";
    case Kind::Unsupported: return "unsupported";
  }
  return "unsupported";
}

// Every registered operator schema, with the argument kinds the binding would use, for the
// code generator (scripts/gen-ops.ts).
Napi::Value ListOps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  UC_GUARD_BEGIN
  auto names = c10::Dispatcher::singleton().getAllOpNames();
  auto out = Napi::Array::New(env);
  uint32_t idx = 0;
  for (const auto& on : names) {
    auto handle = c10::Dispatcher::singleton().findSchema(on);
    if (!handle || !handle->hasSchema()) continue;
    const auto& schema = handle->schema();
    auto o = Napi::Object::New(env);
    o.Set("name", on.name);
    o.Set("overload", on.overload_name);
    std::ostringstream ss;
    ss << schema;
    o.Set("schema", ss.str());
    auto args = Napi::Array::New(env);
    uint32_t ai = 0;
    for (const auto& a : schema.arguments()) {
      bool optional;
      Kind k = kindOf(a.real_type(), optional);
      auto ao = Napi::Object::New(env);
      ao.Set("name", a.name());
      ao.Set("type", a.real_type()->annotation_str());
      ao.Set("kind", kindName(k));
      ao.Set("optional", optional);
      ao.Set("hasDefault", a.default_value().has_value());
      if (a.default_value()) {
        std::ostringstream ds;
        ds << *a.default_value();
        ao.Set("default", ds.str());
      }
      ao.Set("kwargOnly", a.kwarg_only());
      ao.Set("isWrite", a.alias_info() != nullptr && a.alias_info()->isWrite());
      args.Set(ai++, ao);
    }
    o.Set("args", args);
    auto rets = Napi::Array::New(env);
    uint32_t ri = 0;
    for (const auto& r : schema.returns()) {
      bool optional;
      Kind k = kindOf(r.real_type(), optional);
      auto ro = Napi::Object::New(env);
      ro.Set("name", r.name());
      ro.Set("type", r.real_type()->annotation_str());
      ro.Set("kind", kindName(k));
      ro.Set("isWrite", r.alias_info() != nullptr && r.alias_info()->isWrite());
      rets.Set(ri++, ro);
    }
    o.Set("returns", rets);
    out.Set(idx++, o);
  }
  return out;
  UC_GUARD_END(env)
}

}  // namespace
}  // namespace uc

void registerOpFns(Napi::Env env, Napi::Object exports) {

  exports.Set("opId", Napi::Function::New(env, uc::OpId));
  exports.Set("opName", Napi::Function::New(env, uc::OpName));
  napi_value call;
  napi_create_function(env, "call", NAPI_AUTO_LENGTH, uc::CallRaw, nullptr, &call);
  exports.Set("call", Napi::Value(env, call));
  exports.Set("listOps", Napi::Function::New(env, uc::ListOps));
}
