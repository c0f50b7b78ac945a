// GPT-2's pre-tokenizer, written by hand (no regex engine). It splits text into the pieces
// that OpenAI's pattern (r50k_base / GPT-2) matches, leftmost-first, with that regex's
// semantics:
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// \p{L}, \p{N} and \s (White_Space) come from the Unicode 16.0 tables in
// unicode_tables.inc. The contractions are case-sensitive, as in the original. Bytes that
// are not well-formed UTF-8 count as one character of class `other` each.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gpt2 {

// Returns the end (exclusive) of the piece that starts at s[pos]; pos < n.
size_t pretokenize_next(const uint8_t * s, size_t n, size_t pos);

}   // namespace gpt2
