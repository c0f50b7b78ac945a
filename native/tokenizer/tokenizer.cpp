// Construction from vocab + merges, encode (pre-tokenize, whole-piece lookup, BPE merge)
// and decode. Loading from files is in tokenizer_load.cpp.
#include "tokenizer.h"

#include "bpe.h"
#include "byte_level.h"
#include "pretokenizer.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <unordered_set>

namespace gpt2 {

namespace {

std::string quoted_excerpt(std::string_view s) {
    constexpr size_t k_max = 40;
    std::string      out   = "'";
    out.append(s.substr(0, k_max));
    if (s.size() > k_max) { out += "..."; }
    out += "'";
    return out;
}

}   // namespace

tokenizer::tokenizer() : d_(new tokenizer_data()) {}
tokenizer::~tokenizer() = default;

std::shared_ptr<const tokenizer> tokenizer::from_vocab(std::vector<std::string> tokens, const std::vector<std::string> & merges,
                                                       int32_t eos_id, const std::vector<uint32_t> & special_ids) {
    const size_t n_vocab = tokens.size();
    if (n_vocab < 256) {
        throw std::runtime_error("tokenizer: vocabulary has " + std::to_string(n_vocab) +
                                 " tokens; a byte-level BPE vocabulary needs at least 256");
    }
    if (n_vocab >= pair_table::k_max_ids) {
        throw std::runtime_error("tokenizer: vocabulary has " + std::to_string(n_vocab) + " tokens; at most " +
                                 std::to_string(pair_table::k_max_ids - 1) + " are supported");
    }
    if (eos_id < 0 || static_cast<size_t>(eos_id) >= n_vocab) {
        throw std::runtime_error("tokenizer: eos token id " + std::to_string(eos_id) + " is outside the vocabulary (0.." +
                                 std::to_string(n_vocab - 1) + ")");
    }

    std::shared_ptr<tokenizer> tok(new tokenizer());
    tokenizer_data &           d = *tok->d_;
    d.eos_id                     = eos_id;
    d.n_vocab                    = static_cast<uint32_t>(n_vocab);
    d.special.assign(n_vocab, 0);
    d.special[eos_id] = 1;
    for (uint32_t id : special_ids) {
        if (id >= n_vocab) { throw std::runtime_error("tokenizer: special token id " + std::to_string(id) + " is outside the vocabulary"); }
        d.special[id] = 1;
    }
    for (uint32_t id = 0; id < n_vocab; ++id) {
        if (d.special[id]) { d.special_ids.push_back(id); }
    }

    // Token bytes: byte-level decoded for normal tokens, literal UTF-8 for special ones.
    d.offsets.reserve(n_vocab + 1);
    d.offsets.push_back(0);
    std::string bytes;
    for (uint32_t id = 0; id < n_vocab; ++id) {
        const std::string & t = tokens[id];
        if (t.empty()) { throw std::runtime_error("tokenizer: token " + std::to_string(id) + " is empty"); }
        if (d.special[id]) {
            d.arena.append(t);
        } else {
            if (!byte_level_decode(t, bytes)) {
                throw std::runtime_error("tokenizer: token " + std::to_string(id) + " " + quoted_excerpt(t) +
                                         " is not in GPT-2's byte-level alphabet");
            }
            d.arena.append(bytes);
        }
        d.offsets.push_back(static_cast<uint32_t>(d.arena.size()));
        if (d.arena.size() > 0xFFFFFFF0u) { throw std::runtime_error("tokenizer: vocabulary text is too large"); }
    }
    tokens.clear();
    tokens.shrink_to_fit();
    d.arena.append(tokenizer_data::k_copy, '\0');   // padding for decode_into's block copies

    // Lookup of normal tokens by bytes.
    d.vocab.init(n_vocab);
    for (uint32_t id = 0; id < n_vocab; ++id) {
        if (d.special[id]) { continue; }
        const std::string_view b    = d.bytes_of(id);
        const uint32_t         prev = d.vocab.insert(b, id, d);
        if (prev != k_no_token) {
            throw std::runtime_error("tokenizer: tokens " + std::to_string(prev) + " and " + std::to_string(id) + " have the same bytes " +
                                     quoted_excerpt(byte_level_encode(b)));
        }
    }
    for (uint32_t b = 0; b < 256; ++b) {
        const char     c  = static_cast<char>(b);
        const uint32_t id = d.vocab.find(std::string_view(&c, 1), d);
        if (id == k_no_token) {
            static const char * hex = "0123456789ABCDEF";
            throw std::runtime_error(std::string("tokenizer: vocabulary has no token for byte 0x") + hex[b >> 4] + hex[b & 15]);
        }
        d.byte_token[b] = id;
    }

    // Merge ranks of the tokens that merges produce (first listing wins).
    d.rank.assign(n_vocab, k_no_rank);
    d.merges.reserve(merges.size());
    for (size_t r = 0; r < merges.size(); ++r) {
        const std::string & m  = merges[r];
        const size_t        sp = m.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 >= m.size() || m.find(' ', sp + 1) != std::string::npos) {
            throw std::runtime_error("tokenizer: merges[" + std::to_string(r) + "] " + quoted_excerpt(m) + " is not of the form 'a b'");
        }
        std::string a;
        std::string b;
        if (!byte_level_decode(std::string_view(m).substr(0, sp), a) || !byte_level_decode(std::string_view(m).substr(sp + 1), b)) {
            throw std::runtime_error("tokenizer: merges[" + std::to_string(r) + "] " + quoted_excerpt(m) +
                                     " is not in GPT-2's byte-level alphabet");
        }
        const uint32_t left  = d.vocab.find(a, d);
        const uint32_t right = d.vocab.find(b, d);
        if (left == k_no_token || right == k_no_token) {
            throw std::runtime_error("tokenizer: merges[" + std::to_string(r) + "] " + quoted_excerpt(m) +
                                     " names a token that is not in the vocabulary");
        }
        const uint32_t merged = d.vocab.find(a + b, d);
        if (merged == k_no_token) {
            throw std::runtime_error("tokenizer: merges[" + std::to_string(r) + "] " + quoted_excerpt(m) +
                                     " produces a token that is not in the vocabulary");
        }
        if (d.rank[merged] == k_no_rank) { d.rank[merged] = static_cast<uint32_t>(r); }
        d.merges.push_back({ left, right });
    }

    // Pair table: every split of a merge-produced token into two tokens (tiktoken's rule). The
    // splits are collected first so that the table is sized for those that exist (GPT-2: 108k),
    // not for every byte boundary (275k): the table is the tokenizer's largest allocation.
    struct split {
        uint32_t left, right, id;
    };
    std::vector<split> splits;
    for (uint32_t id = 0; id < n_vocab; ++id) {
        if (d.rank[id] == k_no_rank) { continue; }
        const std::string_view t = d.bytes_of(id);
        for (size_t k = 1; k < t.size(); ++k) {
            const uint32_t left = d.vocab.find(t.substr(0, k), d);
            if (left == k_no_token) { continue; }
            const uint32_t right = d.vocab.find(t.substr(k), d);
            if (right == k_no_token) { continue; }
            splits.push_back({ left, right, id });
        }
    }
    d.pairs.init(splits.size());
    for (const split & p : splits) { d.pairs.insert(p.left, p.right, p.id); }

    for (uint32_t id : d.special_ids) { d.special_texts.emplace_back(d.bytes_of(id), id); }
    // Longest first, so that a special token that is a prefix of another loses ties.
    std::stable_sort(d.special_texts.begin(), d.special_texts.end(),
                     [](const auto & x, const auto & y) { return x.first.size() > y.first.size(); });
    return tok;
}

void tokenizer::encode_into(std::string_view text, bool allow_special, std::vector<uint32_t> & out) const {
    encode_into(text, allow_special ? d_->special_ids : std::vector<uint32_t>(), out);
}

void tokenizer::encode_into(std::string_view text, const std::vector<uint32_t> & allowed_special, std::vector<uint32_t> & out) const {
    const tokenizer_data & d = *d_;
    const auto *           s = reinterpret_cast<const uint8_t *>(text.data());
    const size_t           n = text.size();
    bpe_scratch            scratch;
    // Words that are one token are found by one lookup. Multi-token words recur too (names,
    // code identifiers, CJK runs): a small direct-mapped cache, private to this call, remembers
    // where their ids already are in `out`.
    struct cache_entry {
        size_t   text_pos = 0;
        size_t   out_pos  = 0;
        uint32_t len      = 0;   // 0 = empty
        uint32_t n_ids    = 0;
    };
    constexpr size_t         k_cache_size     = 4096;
    constexpr size_t         k_cache_max_len  = 64;     // longer pieces are rarely repeated
    constexpr size_t         k_cache_min_text = 4096;   // short texts do not repay clearing the cache
    std::vector<cache_entry> cache;

    auto encode_ordinary = [&](size_t begin, size_t end) {
        size_t pos = begin;
        while (pos < end) {
            const size_t           piece_end = pretokenize_next(s + begin, end - begin, pos - begin) + begin;
            const std::string_view piece(text.data() + pos, piece_end - pos);
            const uint32_t         id = d.vocab.find(piece, d);
            if (id != k_no_token) {
                out.push_back(id);
            } else if (piece.size() > k_cache_max_len || n < k_cache_min_text) {
                bpe_encode_piece(d, s + pos, piece.size(), scratch, out);
            } else {
                if (cache.empty()) { cache.resize(k_cache_size); }
                const uint64_t h = hash_bytes(s + pos, piece.size());
                cache_entry &  e = cache[h & (k_cache_size - 1)];
                if (e.len == piece.size() && std::memcmp(s + e.text_pos, s + pos, e.len) == 0) {
                    const size_t at = out.size();
                    out.resize(at + e.n_ids);   // copy by index: the source is in `out` too
                    std::copy_n(out.begin() + static_cast<std::ptrdiff_t>(e.out_pos), e.n_ids,
                                out.begin() + static_cast<std::ptrdiff_t>(at));
                } else {
                    const size_t before = out.size();
                    bpe_encode_piece(d, s + pos, piece.size(), scratch, out);
                    e = cache_entry{ pos, before, static_cast<uint32_t>(piece.size()), static_cast<uint32_t>(out.size() - before) };
                }
            }
            pos = piece_end;
        }
    };

    std::vector<std::pair<std::string_view, uint32_t>> specials;
    for (const auto & st : d.special_texts) {
        if (std::find(allowed_special.begin(), allowed_special.end(), st.second) != allowed_special.end()) { specials.push_back(st); }
    }
    if (specials.empty()) {
        encode_ordinary(0, n);
        return;
    }
    // Next occurrence of each special text at or after `pos`, cached so the scan stays linear.
    std::vector<size_t> next(specials.size(), 0);
    std::vector<bool>   stale(specials.size(), true);
    size_t              pos = 0;
    while (pos < n) {
        size_t best   = std::string_view::npos;
        size_t best_i = 0;
        for (size_t i = 0; i < specials.size(); ++i) {
            if (stale[i] || (next[i] != std::string_view::npos && next[i] < pos)) {
                next[i]  = text.find(specials[i].first, pos);
                stale[i] = false;
            }
            if (next[i] < best) {
                best   = next[i];
                best_i = i;
            }
        }
        if (best == std::string_view::npos) { break; }
        encode_ordinary(pos, best);
        out.push_back(specials[best_i].second);
        pos = best + specials[best_i].first.size();
    }
    encode_ordinary(pos, n);
}

std::vector<uint32_t> tokenizer::encode(std::string_view text, bool allow_special) const {
    std::vector<uint32_t> out;
    out.reserve(text.size() / 3 + 16);
    encode_into(text, allow_special, out);
    return out;
}

size_t tokenizer::count(std::string_view text, bool allow_special) const { return encode(text, allow_special).size(); }

void tokenizer::decode_into(const uint32_t * ids, size_t n, std::string & out) const {
    const tokenizer_data & d     = *d_;
    size_t                 total = 0;
    for (size_t i = 0; i < n; ++i) {
        if (ids[i] >= d.n_vocab) {
            throw std::out_of_range("token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                                    " is outside the vocabulary (0.." + std::to_string(d.n_vocab - 1) + ")");
        }
        total += d.offsets[ids[i] + 1] - d.offsets[ids[i]];
    }
    // Tokens of up to k_copy bytes are copied as one fixed-size block (the arena is padded
    // and `out` has room behind the end), which is faster than a memcpy of variable length.
    const size_t base = out.size();
    out.resize(base + total + tokenizer_data::k_copy);
    char *       p     = &out[0] + base;
    const char * arena = d.arena.data();
    for (size_t i = 0; i < n; ++i) {
        const uint32_t a   = d.offsets[ids[i]];
        const uint32_t len = d.offsets[ids[i] + 1] - a;
        if (len <= tokenizer_data::k_copy) {
            std::memcpy(p, arena + a, tokenizer_data::k_copy);
        } else {
            std::memcpy(p, arena + a, len);
        }
        p += len;
    }
    out.resize(base + total);
}

std::string tokenizer::decode(const uint32_t * ids, size_t n) const {
    std::string out;
    decode_into(ids, n, out);
    return out;
}

std::string_view tokenizer::token_bytes(uint32_t id) const {
    if (id >= d_->n_vocab) {
        throw std::out_of_range("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(d_->n_vocab - 1) +
                                ")");
    }
    return d_->bytes_of(id);
}

uint32_t                      tokenizer::n_vocab() const { return d_->n_vocab; }
int32_t                       tokenizer::eos_id() const { return d_->eos_id; }
bool                          tokenizer::is_special(uint32_t id) const { return id < d_->n_vocab && d_->special[id] != 0; }
const std::vector<uint32_t> & tokenizer::special_ids() const { return d_->special_ids; }

std::string tokenizer::token_text(uint32_t id) const {
    const std::string_view b = token_bytes(id);
    return d_->special[id] ? std::string(b) : byte_level_encode(b);
}

std::vector<std::string> tokenizer::merges() const {
    // byte_level_encode inverts the byte_level_decode that the loader checked, so these are the
    // texts as given
    std::vector<std::string> out;
    out.reserve(d_->merges.size());
    for (const auto & [left, right] : d_->merges) {
        out.push_back(byte_level_encode(d_->bytes_of(left)) + ' ' + byte_level_encode(d_->bytes_of(right)));
    }
    return out;
}

}   // namespace gpt2
