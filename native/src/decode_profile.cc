// motDecodeProfile(on: boolean) -> { setup, norms, projections, attention, mlp, output } in ms:
// the phase times of the native decode steps since the previous call (then reset), and turns
// timing on or off for the steps that follow (decode_profile.h).
#include "common.h"
#include "decode_profile.h"

namespace uc::profile {

const char* const kPhaseNames[kPhaseCount] = {"setup", "norms", "projections", "attention", "mlp", "output"};

Totals& totals() {
  static Totals t;
  return t;
}

}  // namespace uc::profile

namespace {

Napi::Value MotDecodeProfile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsBoolean()) throw Napi::TypeError::New(env, "motDecodeProfile: pass true (time the steps that follow) or false");
  uc::profile::Totals& t = uc::profile::totals();
  Napi::Object out = Napi::Object::New(env);
  for (int p = 0; p < uc::profile::kPhaseCount; ++p) {
    out.Set(uc::profile::kPhaseNames[p], Napi::Number::New(env, static_cast<double>(t.ns[p]) / 1e6));
    t.ns[p] = 0;
  }
  t.on = info[0].As<Napi::Boolean>().Value();
  return out;
}

}  // namespace

void registerDecodeProfileFns(Napi::Env env, Napi::Object exports) {
  exports.Set("motDecodeProfile", Napi::Function::New(env, MotDecodeProfile));
}
