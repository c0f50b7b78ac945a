// A small seedable RNG with the same sequence on every platform and compiler (std::
// distributions are not specified bit-exactly): splitmix64 to seed, xoshiro256** to draw.
#pragma once

#include <cstdint>

namespace gpt2 {

class rng {
public:
    explicit rng(uint64_t seed = 0) { reseed(seed); }

    void reseed(uint64_t seed) {
        for (uint64_t & w : s_) {
            seed += 0x9e3779b97f4a7c15ull;
            uint64_t z = seed;
            z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z          = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            w          = z ^ (z >> 31);
        }
    }

    uint64_t next() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t      = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    // uniform in [0, 1)
    double uniform() { return (double) (next() >> 11) * 0x1.0p-53; }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t        s_[4];
};

}   // namespace gpt2
