// ggml's quantized block layouts that our CPU kernels read (quant_matmul.cpp, q4k_interleaved.cpp).
// Their sizes are asserted here; quant_matmul_supports() checks them against ggml's type traits.
#pragma once

#include <cstdint>

namespace gpt2 {

// q8_0: an f16 scale and 32 signed bytes.
struct q8_block {
    uint16_t d;
    int8_t   qs[32];
};
static_assert(sizeof(q8_block) == 34, "q8_0 blocks are 34 bytes");

// q4_0: an f16 scale and 32 nibbles (weights 0-15 low, 16-31 high), offset by 8.
struct q4_block {
    uint16_t d;
    uint8_t  qs[16];
};
static_assert(sizeof(q4_block) == 18, "q4_0 blocks are 18 bytes");

// q4_K super-block: 256 weights in 8 sub-blocks of 32, each with a six-bit scale and min (packed
// in 12 bytes), under f16 super-scales; the nibbles of 64 weights per 32 bytes (low nibbles the
// first 32, high nibbles the next 32).
struct q4k_block {
    uint16_t d;
    uint16_t dmin;
    uint8_t  scales[12];
    uint8_t  qs[128];
};
static_assert(sizeof(q4k_block) == 144, "q4_K blocks are 144 bytes");

// q8_K (q4_K's activations): an f32 scale, 256 bytes, and the sums of each 16.
struct q8k_block {
    float   d;
    int8_t  qs[256];
    int16_t bsums[16];
};
static_assert(sizeof(q8k_block) == 292, "q8_K blocks are 292 bytes");

}   // namespace gpt2
