// Which code path our own CPU kernels take. Our sources are built for the baseline of their
// architecture (the .node must load on any x86-64, any arm64): each SIMD kernel carries a target
// attribute (simd_x86.h, simd_arm.h) and is chosen at run time by path().
#pragma once

namespace gpt2::simd {

// The code path our kernels take: the portable one, or a SIMD one (widest x86 last).
enum class isa { portable, avx2, avx512, neon };

// The widest path this CPU runs, capped by GPT2_NODE_KERNELS=portable|avx2|avx2-vnni (read per call: the
// tests compare the paths in one process). A path is taken only where ggml's CPU backend was
// built for it too, so that a prebuilt variant's kernels and its ggml agree: our kernels must
// round as ggml's do, and its tinyBLAS sums f16 and f32 in 16 lanes where it is built for
// AVX-512, in 8 where for AVX2, in 4 (f32) or 8 half-precision ones (f16) on NEON.
isa path();

// The path the cap names (its name in GPT2_NODE_KERNELS), or nullptr when none is set.
const char * path_cap();

// "portable", "AVX2", "AVX-512", "NEON"
const char * path_name(isa i);

// "portable", "avx2", "avx512", "neon": the names GPT2_NODE_KERNELS and model.info use
const char * path_id(isa i);

// The int8 dot product our quantized kernels take on x86: AVX2's maddubs + madd, or VNNI's dpbusd
// (the same integers) where the CPU has it on the path taken: AVX-512 VNNI on the AVX-512 path,
// AVX-VNNI on the AVX2 one unless GPT2_NODE_KERNELS=avx2 asks for plain AVX2 (=avx2-vnni: the AVX2
// path with AVX-VNNI, the tests' way to run it on a CPU that has AVX-512 too).
enum class int8_dot_isa { madd, avx_vnni, avx512_vnni };
int8_dot_isa int8_dot();

// Whether our kernels take a SIMD path.
inline bool enabled() { return path() != isa::portable; }

}   // namespace gpt2::simd
