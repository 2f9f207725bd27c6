// Entry point of the native addon: each file registers its own functions.
#include "common.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  registerHandleFns(env, exports);
  registerOpFns(env, exports);
  registerDataFns(env, exports);
  registerAutogradFns(env, exports);
  registerRuntimeFns(env, exports);
  registerDistributedFns(env, exports);
  registerMotDecodeFns(env, exports);
  registerDecodeProfileFns(env, exports);
  registerAllocatorStatsFns(env, exports);
  registerCheckpointFns(env, exports);
  registerFusedOptimFns(env, exports);
  return exports;
}

NODE_API_MODULE(unicharacter_torch, Init)
