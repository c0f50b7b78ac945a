// GPT-2's byte-level alphabet: every byte 0..255 is written as one printable code point
// in vocab.json / merges.txt / tokenizer.ggml.tokens ("Ġ" is the space byte 0x20, "Ċ" is
// 0x0A, ...). Bytes that are printable Latin-1 map to themselves; the other 68 map to
// U+0100.. in byte order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace gpt2 {

// The code point that stands for byte b.
uint32_t byte_to_cp(uint8_t b);

// Decodes a token string in the byte-level alphabet into its bytes. Returns false (and
// leaves `out` unspecified) when the string is not valid UTF-8 or contains a code point
// outside the alphabet.
bool byte_level_decode(std::string_view token, std::string & out);

// Encodes bytes into the byte-level alphabet (the inverse of byte_level_decode).
std::string byte_level_encode(std::string_view bytes);

}   // namespace gpt2
