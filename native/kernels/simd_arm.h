// Arm64 helpers for our own CPU kernels (dense_matmul.cpp, quant_matmul.cpp). NEON is in every
// arm64 CPU; FP16 vector arithmetic is not (Armv8.2's optional FEAT_FP16): a kernel using it
// carries GPT2_FP16 and runs only where ggml's CPU backend is built for it too
// (ggml_cpu_has_fp16_va()), which the loader's variant choice guarantees the CPU has.
#pragma once

#include "kernels/simd.h"

#if defined(__aarch64__) && defined(__ARM_NEON)
#define GPT2_NODE_ARM 1
#include <arm_neon.h>

// The int8 dot product (FEAT_DotProd, Armv8.2's optional vdotq_s32), likewise only where ggml is
// built for it (ggml_cpu_has_dotprod()).
#if defined(__ARM_FEATURE_DOTPROD)
#define GPT2_DOTPROD
#elif defined(__clang__)
#define GPT2_DOTPROD __attribute__((target("dotprod")))
#else
#define GPT2_DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))
#endif

#if defined(__ARM_FEATURE_FP16_VECTOR_ARITHMETIC)
#define GPT2_FP16
#elif defined(__clang__)
#define GPT2_FP16 __attribute__((target("fullfp16")))
#else
#define GPT2_FP16 __attribute__((target("arch=armv8.2-a+fp16")))
#endif
#endif
