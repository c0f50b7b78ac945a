// x86 helpers for our own CPU kernels (decode_attention.cpp, dense_matmul.cpp, ...). Our sources
// are built without -mavx2 (the .node must load on any x86-64): each kernel carries a target
// attribute and is chosen at run time (simd.h, path()).
#pragma once

#include "kernels/simd.h"

#include <cstdlib>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define GPT2_NODE_X86 1
#include <immintrin.h>

#include "ggml.h"

#define GPT2_AVX2        __attribute__((target("avx2,fma,f16c")))
#define GPT2_AVX512      __attribute__((target("avx512f,avx512bw,avx512vl,avx2,fma,f16c")))
#define GPT2_AVX512_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))

namespace gpt2::simd {

GPT2_AVX2 inline __m256 load8(const ggml_fp16_t * p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p))); }
GPT2_AVX2 inline __m256 load8(const float * p) { return _mm256_loadu_ps(p); }

GPT2_AVX2 inline float hsum(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x        = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x        = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

GPT2_AVX512 inline __m512 load16(const ggml_fp16_t * p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
}
GPT2_AVX512 inline __m512 load16(const float * p) { return _mm512_loadu_ps(p); }

inline bool cpu_has_avx2() {
    static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    return yes;
}

inline bool cpu_has_avx512() {
    static const bool yes = cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl");
    return yes;
}

inline bool cpu_has_avx512_vnni() {
    static const bool yes = cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
    return yes;
}

inline bool cpu_has_avx_vnni() {
    static const bool yes = cpu_has_avx2() && __builtin_cpu_supports("avxvnni");
    return yes;
}

}   // namespace gpt2::simd
#endif
