// BPE merge of one piece, tiktoken's rule: repeatedly merge the adjacent pair whose merged
// token has the lowest rank, leftmost first among equal ranks. Short pieces use a scan over
// a flat array; long ones a min-heap over a linked list (O(n log n); a 1 MB word is fine).
#include "bpe.h"

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace gpt2 {

namespace {

constexpr size_t k_scan_max = 48;   // pieces up to this many bytes use the quadratic scan

void bpe_scan(const tokenizer_data & d, const uint8_t * s, size_t n, bpe_scratch & sc, std::vector<uint32_t> & out) {
    uint32_t ids[k_scan_max];
    uint32_t ranks[k_scan_max];
    uint32_t merged[k_scan_max];
    for (size_t i = 0; i < n; ++i) { ids[i] = d.byte_token[s[i]]; }
    size_t m = n;
    for (size_t i = 0; i + 1 < m; ++i) { ranks[i] = d.pair_rank(ids[i], ids[i + 1], merged[i]); }
    while (m > 1) {
        uint32_t best = k_no_rank;
        size_t   at   = 0;
        for (size_t i = 0; i + 1 < m; ++i) {
            if (ranks[i] < best) {
                best = ranks[i];
                at   = i;
            }
        }
        if (best == k_no_rank) { break; }
        ids[at] = merged[at];
        for (size_t i = at + 1; i + 1 < m; ++i) {
            ids[i]    = ids[i + 1];
            ranks[i]  = ranks[i + 1];
            merged[i] = merged[i + 1];
        }
        --m;
        if (at + 1 < m) { ranks[at] = d.pair_rank(ids[at], ids[at + 1], merged[at]); }
        if (at > 0) { ranks[at - 1] = d.pair_rank(ids[at - 1], ids[at], merged[at - 1]); }
    }
    (void) sc;
    out.insert(out.end(), ids, ids + m);
}

void bpe_heap(const tokenizer_data & d, const uint8_t * s, size_t n, bpe_scratch & sc, std::vector<uint32_t> & out) {
    constexpr uint32_t k_end = 0xFFFFFFFFu;
    sc.ids.resize(n);
    sc.prev.resize(n);
    sc.next.resize(n);
    sc.heap.clear();
    for (size_t i = 0; i < n; ++i) {
        sc.ids[i]  = d.byte_token[s[i]];
        sc.prev[i] = i == 0 ? k_end : static_cast<uint32_t>(i - 1);
        sc.next[i] = i + 1 == n ? k_end : static_cast<uint32_t>(i + 1);
    }
    // Entries are (rank << 32 | left node): the min-heap pops the lowest rank, then the
    // leftmost node. Every current pair has an entry with its current rank (one is pushed
    // whenever a pair changes); stale entries are recognised on pop by recomputing the rank
    // of the pair now at that node (dead nodes have ids[i] == k_no_token).
    uint32_t merged = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
        const uint32_t rank = d.pair_rank(sc.ids[i], sc.ids[i + 1], merged);
        if (rank != k_no_rank) { sc.heap.push_back((static_cast<uint64_t>(rank) << 32) | i); }
    }
    std::make_heap(sc.heap.begin(), sc.heap.end(), std::greater<>());
    auto push = [&](uint32_t left) {
        const uint32_t right = sc.next[left];
        if (right == k_end) { return; }
        const uint32_t rank = d.pair_rank(sc.ids[left], sc.ids[right], merged);
        if (rank == k_no_rank) { return; }
        sc.heap.push_back((static_cast<uint64_t>(rank) << 32) | left);
        std::push_heap(sc.heap.begin(), sc.heap.end(), std::greater<>());
    };
    while (!sc.heap.empty()) {
        std::pop_heap(sc.heap.begin(), sc.heap.end(), std::greater<>());
        const uint64_t key = sc.heap.back();
        sc.heap.pop_back();
        const auto     left  = static_cast<uint32_t>(key & 0xFFFFFFFFu);
        const auto     rank  = static_cast<uint32_t>(key >> 32);
        const uint32_t right = sc.next[left];
        if (sc.ids[left] == k_no_token || right == k_end) { continue; }
        if (d.pair_rank(sc.ids[left], sc.ids[right], merged) != rank) { continue; }
        sc.ids[left]  = merged;
        sc.ids[right] = k_no_token;
        sc.next[left] = sc.next[right];
        if (sc.next[right] != k_end) { sc.prev[sc.next[right]] = left; }
        if (sc.prev[left] != k_end) { push(sc.prev[left]); }
        push(left);
    }
    for (uint32_t i = 0; i != k_end; i = sc.next[i]) { out.push_back(sc.ids[i]); }
}

}   // namespace

void bpe_encode_piece(const tokenizer_data & d, const uint8_t * s, size_t n, bpe_scratch & scratch, std::vector<uint32_t> & out) {
    if (n == 0) { return; }
    if (n >= 0xFFFFFFFFu) { throw std::length_error("tokenizer: a single word of 4 GiB or more is not supported"); }
    if (n <= k_scan_max) {
        bpe_scan(d, s, n, scratch, out);
    } else {
        bpe_heap(d, s, n, scratch, out);
    }
}

}   // namespace gpt2
