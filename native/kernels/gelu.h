// GPT-2's GELU (tanh form) on the CPU as a custom ggml op: the same numbers as ggml's own, eight
// at a time.
//
// Why: ggml's CPU GELU rounds each input to f16 and looks the result up in a 65536-entry table,
// one element at a time (with two conversions and two branches per element), a visible share of
// a prompt's time (bench/RESULTS.md, fifth run). This op does the same rounding and the
// same lookup with AVX2 (a conversion of eight, one gather), so every output is bit for bit
// ggml's: parity with llama.cpp (which uses ggml's) is unchanged.
//
// The table is not ggml's internal one: it is built once per process by running ggml's public
// GELU op over every f16 value, so it holds exactly what ggml's lookup returns.
#pragma once

struct ggml_context;
struct ggml_tensor;

namespace gpt2 {

// Whether gelu_lookup() can run here (an x86-64 CPU with AVX2, F16C; our SIMD kernels enabled).
bool gelu_lookup_available();

// x F32 contiguous: returns x (in place) holding, to the bit, what ggml_gelu(ctx, x) would on the
// CPU.
ggml_tensor * gelu_lookup(ggml_context * ctx, ggml_tensor * x);

}   // namespace gpt2
