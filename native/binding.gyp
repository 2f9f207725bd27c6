{
  "targets": [
    {
      # The fused optimizer's element loops, built apart with -ffp-contract=off so that no
      # multiply-add is fused unless written so: their bits must equal libtorch's operators'
      # (src/optim_kernels.cc). -fno-math-errno lets sqrt vectorise (it never sets errno here).
      "target_name": "uc_optim_kernels",
      "type": "static_library",
      "sources": [ "src/optim_kernels.cc" ],
      "cflags!": [ "-fno-exceptions", "-fno-rtti" ],
      "cflags_cc!": [ "-std=gnu++17", "-std=gnu++14" ],
      "cflags_cc": [ "-std=c++17", "-fPIC", "-O3", "-ffp-contract=off", "-fno-math-errno" ]
    },
    {
      "target_name": "unicharacter_torch",
      "sources": [
        "src/addon.cc",
        "src/handle.cc",
        "src/convert.cc",
        "src/ops.cc",
        "src/tensor_data.cc",
        "src/autograd.cc",
        "src/checkpoint.cc",
        "src/runtime.cc",
        "src/distributed.cc",
        "src/mot_decode.cc",
        "src/decode_profile.cc",
        "src/vector_kernels.cc",
        "src/allocator_stats.cc",
        "src/fused_optim.cc"
      ],
      "dependencies": [ "uc_optim_kernels" ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node config.cjs include)"
      ],
      # NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS: when a worker thread is ended inside a native call,
      # turning a C++ error into a JS exception fails; without it node-addon-api throws again from
      # its catch handler and the whole process aborts (docs/engine.md, "Worker threads").
      "defines": [ "NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS", "<!@(node config.cjs defines)" ],
      "libraries": [ "<!@(node config.cjs libs)" ],
      "cflags!": [ "-fno-exceptions", "-fno-rtti" ],
      "cflags_cc!": [ "-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=gnu++14" ],
      "cflags_cc": [ "-std=c++17", "-fexceptions", "-frtti", "-O3", "-ftls-model=initial-exec", "-Wno-unused-parameter", "-Wno-deprecated-declarations" ]
    }
  ]
}
