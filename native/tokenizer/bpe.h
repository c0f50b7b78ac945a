// The tokenizer's tables (token bytes, byte-string lookup, pair table) and the BPE merge of
// one pre-tokenized piece. Internal to native/tokenizer/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gpt2 {

constexpr uint32_t k_no_token = 0xFFFFFFFFu;
constexpr uint32_t k_no_rank  = 0xFFFFFFFFu;

inline uint64_t hash_bytes(const uint8_t * p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (static_cast<uint64_t>(n) * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t v;
        std::memcpy(&v, p, 8);
        h = (h ^ v) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
        p += 8;
        n -= 8;
    }
    if (n > 0) {
        uint64_t v = 0;
        std::memcpy(&v, p, n);
        h = (h ^ v) * 0x94D049BB133111EBull;
        h ^= h >> 31;
    }
    h *= 0xD6E8FEB86659FD93ull;
    h ^= h >> 32;
    return h;
}

inline uint64_t hash_pair(uint32_t a, uint32_t b) {
    uint64_t h = (static_cast<uint64_t>(a) << 32) | b;
    h *= 0x9E3779B97F4A7C15ull;
    h ^= h >> 29;
    return h;
}

struct tokenizer_data;

// Open-addressing table: token bytes -> id (normal tokens only).
class bytes_table {
public:
    void init(size_t n_items) {
        size_t cap = 16;
        while (cap < n_items * 2) { cap <<= 1; }
        slots_.assign(cap, slot{ k_no_token, 0 });
        mask_ = cap - 1;
    }
    // Returns the id already stored for these bytes, or k_no_token after inserting.
    inline uint32_t insert(std::string_view key, uint32_t id, const tokenizer_data & d);
    inline uint32_t find(std::string_view key, const tokenizer_data & d) const;

private:
    struct slot {
        uint32_t id;
        uint32_t tag;   // high hash bits, checked before comparing bytes
    };
    std::vector<slot> slots_;
    size_t            mask_ = 0;
};

// Open-addressing table: (left id, right id) -> merged id, all three packed in one 64-bit slot
// (21 bits each), so the table (GPT-2: 108k pairs, 256k slots) takes 2 MiB rather than 4. A
// pair's merge rank is its merged token's rank (tokenizer_data::pair_rank).
class pair_table {
public:
    static constexpr uint32_t k_id_bits = 21;
    static constexpr uint32_t k_max_ids = (1u << k_id_bits) - 1;   // ids below this; all-ones is "empty"

    void init(size_t n_items) {
        size_t cap = 16;
        while (cap < n_items * 2) { cap <<= 1; }
        slots_.assign(cap, k_empty);
        mask_ = cap - 1;
    }
    // a, b, id < k_max_ids. The same pair always merges into the same token.
    void insert(uint32_t a, uint32_t b, uint32_t id) {
        const uint64_t key = pack(a, b);
        for (size_t i = hash_pair(a, b) & mask_;; i = (i + 1) & mask_) {
            uint64_t & s = slots_[i];
            if (s == k_empty) {
                s = key | (static_cast<uint64_t>(id) << (2 * k_id_bits));
                return;
            }
            if ((s & k_key_mask) == key) { return; }
        }
    }
    // The merged id, or k_no_token if a and b do not merge.
    inline uint32_t find(uint32_t a, uint32_t b) const {
        const uint64_t key = pack(a, b);
        for (size_t i = hash_pair(a, b) & mask_;; i = (i + 1) & mask_) {
            const uint64_t s = slots_[i];
            if ((s & k_key_mask) == key) { return static_cast<uint32_t>(s >> (2 * k_id_bits)); }
            if (s == k_empty) { return k_no_token; }
        }
    }

private:
    static constexpr uint64_t k_empty    = ~0ull;
    static constexpr uint64_t k_key_mask = (1ull << (2 * k_id_bits)) - 1;
    static uint64_t           pack(uint32_t a, uint32_t b) { return a | (static_cast<uint64_t>(b) << k_id_bits); }
    std::vector<uint64_t>     slots_;
    size_t                    mask_ = 0;
};

struct tokenizer_data {
    static constexpr size_t k_copy = 16;   // decode copies tokens up to this size as one block

    uint32_t                                           n_vocab = 0;
    int32_t                                            eos_id  = -1;
    std::string                                        arena;     // bytes of all tokens, concatenated, then k_copy bytes of padding
    std::vector<uint32_t>                              offsets;   // n_vocab + 1 offsets into arena
    std::vector<uint8_t>                               special;   // 1 for special tokens
    std::vector<uint32_t>                              special_ids;
    std::vector<std::pair<uint32_t, uint32_t>>         merges;          // (left, right) ids in rank order, for writing GGUF
    std::vector<std::pair<std::string_view, uint32_t>> special_texts;   // longest first
    std::vector<uint32_t>                              rank;            // merge rank of each merge-produced token, else k_no_rank
    uint32_t                                           byte_token[256] = {};
    bytes_table                                        vocab;
    pair_table                                         pairs;

    std::string_view bytes_of(uint32_t id) const { return std::string_view(arena.data() + offsets[id], offsets[id + 1] - offsets[id]); }
    // The merge rank of the pair (k_no_rank if a and b do not merge); sets `merged`.
    uint32_t pair_rank(uint32_t a, uint32_t b, uint32_t & merged) const {
        merged = pairs.find(a, b);
        return merged == k_no_token ? k_no_rank : rank[merged];
    }
};

inline uint32_t bytes_table::insert(std::string_view key, uint32_t id, const tokenizer_data & d) {
    const uint64_t h   = hash_bytes(reinterpret_cast<const uint8_t *>(key.data()), key.size());
    const auto     tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
        slot & s = slots_[i];
        if (s.id == k_no_token) {
            s = slot{ id, tag };
            return k_no_token;
        }
        if (s.tag == tag && d.bytes_of(s.id) == key) { return s.id; }
    }
}

inline uint32_t bytes_table::find(std::string_view key, const tokenizer_data & d) const {
    const uint64_t h   = hash_bytes(reinterpret_cast<const uint8_t *>(key.data()), key.size());
    const auto     tag = static_cast<uint32_t>(h >> 32);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
        const slot & s = slots_[i];
        if (s.id == k_no_token) { return k_no_token; }
        if (s.tag == tag && d.bytes_of(s.id) == key) { return s.id; }
    }
}

// Reusable buffers for bpe_encode_piece.
struct bpe_scratch {
    std::vector<uint32_t> ids;
    std::vector<uint32_t> prev;
    std::vector<uint32_t> next;
    std::vector<uint64_t> heap;   // (rank << 32) | left node
};

// Appends the BPE tokens of one piece (n >= 1 bytes) to `out`. O(n log n).
void bpe_encode_piece(const tokenizer_data & d, const uint8_t * s, size_t n, bpe_scratch & scratch, std::vector<uint32_t> & out);

}   // namespace gpt2
