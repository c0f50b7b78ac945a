// Which code path our kernels take (simd.h): what the CPU has, what ggml's CPU backend was built
// for, and the GPT2_NODE_KERNELS cap.
#include "kernels/simd.h"

#include "kernels/simd_arm.h"
#include "kernels/simd_x86.h"

#include "ggml-cpu.h"

#include <cstdlib>
#include <cstring>

namespace gpt2::simd {

const char * path_cap() {
    const char * cap = std::getenv("GPT2_NODE_KERNELS");
    return cap && (std::strcmp(cap, "portable") == 0 || std::strcmp(cap, "avx2") == 0 || std::strcmp(cap, "avx2-vnni") == 0) ? cap
                                                                                                                             : nullptr;
}

isa path() {
    const char * cap = path_cap();
    if (cap && std::strcmp(cap, "portable") == 0) return isa::portable;
#ifdef GPT2_NODE_X86
    // ggml_cpu_has_*(): what ggml-cpu was compiled for, not what this CPU has. Our kernels give
    // the bits of ggml's AVX2 and AVX-512 kernels (tinyBLAS sums in 16 lanes where built for
    // AVX-512F, in 8 where for AVX2); a ggml built for neither (the prebuilt x64 variant) sums in
    // its scalar order, which ours do not reproduce, so there ggml's ops run (the kernels' *_supports()).
    if (!cap && cpu_has_avx512() && ggml_cpu_has_avx512()) return isa::avx512;
    if (cpu_has_avx2() && ggml_cpu_has_avx2()) return isa::avx2;
#endif
#ifdef GPT2_NODE_ARM
    if (ggml_cpu_has_neon()) return isa::neon;   // every arm64 CPU; half-precision sums need more (simd_arm.h)
#endif
    return isa::portable;
}

int8_dot_isa int8_dot() {
#ifdef GPT2_NODE_X86
    const isa p = path();
    if (p == isa::avx512 && cpu_has_avx512_vnni()) return int8_dot_isa::avx512_vnni;
    const char * cap = path_cap();
    if (p != isa::portable && (!cap || std::strcmp(cap, "avx2-vnni") == 0) && cpu_has_avx_vnni()) return int8_dot_isa::avx_vnni;
#endif
    return int8_dot_isa::madd;
}

// indexed by isa
static const char * const k_names[] = { "portable", "AVX2", "AVX-512", "NEON" };
static const char * const k_ids[]   = { "portable", "avx2", "avx512", "neon" };

const char * path_name(isa i) { return k_names[static_cast<int>(i)]; }
const char * path_id(isa i) { return k_ids[static_cast<int>(i)]; }

}   // namespace gpt2::simd
