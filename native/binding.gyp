# The vaelab native kernel pack: native/build/Release/vaelab_native.node, linked against OpenBLAS.
# OpenBLAS is located by find-openblas.js (VAELAB_OPENBLAS_INCLUDE / VAELAB_OPENBLAS_LIB override it).
# Normally built by ../scripts/build-native.js at npm install; by hand: cd native && node-gyp rebuild
{
  "targets": [
    {
      "target_name": "vaelab_native",
      "sources": ["src/vaelab_native.c"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["<!@(node find-openblas.js include)"],
      "libraries": ["<!@(node find-openblas.js libs)"],
      # -ffp-contract=off: no fused multiply-add, so adamUpdate rounds exactly like the tfjs ops it replaces.
      # -fno-math-errno: sqrtf without the errno check, so that loops using it vectorise (same bits).
      # -fno-trapping-math: floating-point exceptions are not observed, so that loops with selects
      # (relu, the Bernoulli terms, the activations) compute both sides and vectorise (same bits).
      "cflags_c": ["-std=gnu11", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-psabi"],
      "conditions": [
        # Bind every symbol at load time, so that a libopenblas without the functions we call
        # fails require() (a catchable error) instead of crashing the process at the first call.
        ["OS=='linux'", {"ldflags": ["-Wl,-z,now"]}]
      ],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-std=gnu11", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-trapping-math"]
      }
    }
  ]
}
