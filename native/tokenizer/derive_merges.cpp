// Merges from a vocabulary in merge order (see tokenizer.h): for legacy ggml GPT-2 files, which
// store only each token's bytes.
#include "tokenizer.h"

#include "byte_level.h"

#include <stdexcept>
#include <unordered_map>

namespace gpt2 {

std::vector<std::string> derive_merges(const std::vector<std::string> & token_bytes, const std::vector<uint8_t> & special) {
    // rank of every token seen so far; byte tokens rank below all merges
    std::unordered_map<std::string, size_t> rank;
    rank.reserve(token_bytes.size() * 2);
    for (size_t id = 0; id < token_bytes.size(); ++id) {
        if (!special[id] && token_bytes[id].size() == 1) rank.emplace(token_bytes[id], 0);
    }
    std::vector<std::string> merges;
    std::vector<std::string> parts;
    for (size_t id = 0; id < token_bytes.size(); ++id) {
        const std::string & t = token_bytes[id];
        if (special[id] || t.size() < 2) continue;
        // BPE with the earlier tokens: merge the adjacent pair of lowest rank until none merges
        parts.clear();
        for (char c : t) parts.emplace_back(1, c);
        for (;;) {
            size_t best = parts.size(), best_rank = SIZE_MAX;
            for (size_t i = 0; i + 1 < parts.size(); ++i) {
                auto it = rank.find(parts[i] + parts[i + 1]);
                if (it != rank.end() && it->second < best_rank) {
                    best      = i;
                    best_rank = it->second;
                }
            }
            if (best == parts.size()) break;
            parts[best] += parts[best + 1];
            parts.erase(parts.begin() + (std::ptrdiff_t) best + 1);
        }
        if (parts.size() != 2) {
            throw std::runtime_error("token " + std::to_string(id) + " \"" + byte_level_encode(t) + "\" is " +
                                     (parts.size() == 1 ? "a duplicate of an earlier token"
                                                        : "not the merge of two earlier tokens (ids are not in merge order)"));
        }
        merges.push_back(byte_level_encode(parts[0]) + " " + byte_level_encode(parts[1]));
        rank.emplace(t, merges.size());
    }
    return merges;
}

std::shared_ptr<const tokenizer> tokenizer::from_token_bytes(const std::vector<std::string> & token_bytes) {
    std::vector<uint8_t> special(token_bytes.size(), 0);
    int32_t              eos = -1;
    for (size_t id = 0; id < token_bytes.size(); ++id) {
        if (token_bytes[id] == "<|endoftext|>") {
            special[id] = 1;
            eos         = (int32_t) id;
        }
    }
    if (eos < 0) throw std::runtime_error("the vocabulary has no <|endoftext|> token");
    const std::vector<std::string> merges = derive_merges(token_bytes, special);
    std::vector<std::string>       tokens;
    tokens.reserve(token_bytes.size());
    for (size_t id = 0; id < token_bytes.size(); ++id) {
        tokens.push_back(special[id] ? token_bytes[id] : byte_level_encode(token_bytes[id]));
    }
    return from_vocab(std::move(tokens), merges, eos);
}

}   // namespace gpt2
