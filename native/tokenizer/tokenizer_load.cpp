// Loading a tokenizer from GGUF metadata, HF vocab.json + merges.txt, or HF tokenizer.json.
// Every key, type and value is checked; bad data throws std::runtime_error naming the file
// and the problem (never a GGML_ASSERT: types are checked before gguf_get_* is called).
#include "tokenizer.h"

#include "bpe.h"
#include "gguf.h"
#include "io/gguf_reader.h"
#include "nlohmann/json.hpp"
#include "util/error.h"
#include "util/files.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace gpt2 {

namespace {

using json = nlohmann::json;

// Bad data: ERR_BAD_MODEL (gpt2::error is a std::runtime_error with a stable code).
[[noreturn]] void fail(const std::string & where, const std::string & what) { throw error(codes::bad_model, where + ": " + what); }

[[noreturn]] void fail_not_found(const std::string & where, const std::string & what) {
    throw error(codes::not_found, where + ": " + what);
}

// --- GGUF ---------------------------------------------------------------------------------

int64_t gguf_require_key(const gguf_context * ctx, const char * key, gguf_type type, gguf_type arr_type) {
    const int64_t id = gguf_find_key(ctx, key);
    if (id < 0) { fail("GGUF", std::string("missing key ") + key); }
    const gguf_type t = gguf_get_kv_type(ctx, id);
    if (t != type) { fail("GGUF", std::string("key ") + key + " has type " + gguf_type_name(t) + ", expected " + gguf_type_name(type)); }
    if (type == GGUF_TYPE_ARRAY) {
        const gguf_type at = gguf_get_arr_type(ctx, id);
        if (at != arr_type) {
            fail("GGUF", std::string("key ") + key + " is an array of " + gguf_type_name(at) + ", expected " + gguf_type_name(arr_type));
        }
    }
    return id;
}

std::vector<std::string> gguf_string_array(const gguf_context * ctx, const char * key) {
    const int64_t            id = gguf_require_key(ctx, key, GGUF_TYPE_ARRAY, GGUF_TYPE_STRING);
    const size_t             n  = gguf_get_arr_n(ctx, id);
    std::vector<std::string> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
        const char * s = gguf_get_arr_str(ctx, id, i);
        out.emplace_back(s != nullptr ? s : "");
    }
    return out;
}

int64_t gguf_integer(const gguf_context * ctx, const char * key) {
    const int64_t id = gguf_find_key(ctx, key);
    if (id < 0) { fail("GGUF", std::string("missing key ") + key); }
    switch (gguf_get_kv_type(ctx, id)) {
    case GGUF_TYPE_UINT8: return gguf_get_val_u8(ctx, id);
    case GGUF_TYPE_INT8: return gguf_get_val_i8(ctx, id);
    case GGUF_TYPE_UINT16: return gguf_get_val_u16(ctx, id);
    case GGUF_TYPE_INT16: return gguf_get_val_i16(ctx, id);
    case GGUF_TYPE_UINT32: return gguf_get_val_u32(ctx, id);
    case GGUF_TYPE_INT32: return gguf_get_val_i32(ctx, id);
    case GGUF_TYPE_UINT64: {
        const uint64_t v = gguf_get_val_u64(ctx, id);
        if (v > 0x7FFFFFFFull) { fail("GGUF", std::string("key ") + key + " is out of range"); }
        return static_cast<int64_t>(v);
    }
    case GGUF_TYPE_INT64: return gguf_get_val_i64(ctx, id);
    default: fail("GGUF", std::string("key ") + key + " has type " + gguf_type_name(gguf_get_kv_type(ctx, id)) + ", expected an integer");
    }
}

// --- files --------------------------------------------------------------------------------

using files::is_directory;
using files::is_file;

std::string read_file(const std::string & path) {
    std::string text;
    switch (files::read(path, text)) {
    case files::read_status::ok: break;
    case files::read_status::cannot_open: fail_not_found(path, "cannot open file");
    case files::read_status::read_error: fail(path, "read error");
    }
    return text;
}

std::string dir_of(const std::string & path) {
    const size_t slash = path.find_last_of('/');
    return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

json parse_json(const std::string & path) {
    try {
        return json::parse(read_file(path));
    } catch (const json::exception & e) { fail(path, std::string("invalid JSON: ") + e.what()); }
}

// vocab object {token: id} -> tokens indexed by id; every id 0..n-1 exactly once.
std::vector<std::string> tokens_from_vocab_object(const json & vocab, const std::string & where, size_t min_size = 0) {
    if (!vocab.is_object()) { fail(where, "vocab is not a JSON object"); }
    size_t                   n = std::max(vocab.size(), min_size);
    std::vector<std::string> tokens(n);
    std::vector<bool>        seen(n, false);
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
        if (!it.value().is_number_integer()) { fail(where, "vocab entry '" + it.key() + "' is not an integer id"); }
        const int64_t id = it.value().get<int64_t>();
        if (id < 0 || static_cast<size_t>(id) >= n) {
            fail(where, "vocab id " + std::to_string(id) + " of '" + it.key() + "' is outside 0.." + std::to_string(n - 1));
        }
        if (seen[id]) { fail(where, "vocab id " + std::to_string(id) + " is used twice"); }
        seen[id]   = true;
        tokens[id] = it.key();
    }
    return tokens;
}

std::vector<std::string> merges_from_txt(const std::string & path) {
    const std::string        text = read_file(path);
    std::vector<std::string> merges;
    size_t                   pos   = 0;
    bool                     first = true;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string::npos) { end = text.size(); }
        std::string line = text.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') { line.pop_back(); }
        pos = end + 1;
        if (first && line.rfind("#version", 0) == 0) {
            first = false;
            continue;
        }
        first = false;
        if (line.empty()) { continue; }
        merges.push_back(std::move(line));
    }
    return merges;
}

int32_t find_eos(const std::vector<std::string> & tokens, const std::vector<uint32_t> & special, const std::string & where) {
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i] == "<|endoftext|>") { return static_cast<int32_t>(i); }
    }
    if (special.size() == 1) { return static_cast<int32_t>(special[0]); }
    fail(where, "cannot find the end-of-text token (no '<|endoftext|>' in the vocabulary)");
}

std::shared_ptr<const tokenizer> load_vocab_json(const std::string & vocab_path, const std::string & merges_path) {
    if (!is_file(merges_path)) { fail_not_found(vocab_path, "merges.txt not found beside it (" + merges_path + ")"); }
    std::vector<std::string>       tokens = tokens_from_vocab_object(parse_json(vocab_path), vocab_path);
    const std::vector<std::string> merges = merges_from_txt(merges_path);
    const int32_t                  eos    = find_eos(tokens, {}, vocab_path);
    try {
        return tokenizer::from_vocab(std::move(tokens), merges, eos);
    } catch (const std::runtime_error & e) { fail(vocab_path, e.what()); }
}

std::shared_ptr<const tokenizer> load_tokenizer_json(const std::string & path, const json & j) {
    if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) { fail(path, "no \"model\" object"); }
    const json & model = j["model"];
    if (model.contains("type") && !(model["type"].is_string() && model["type"].get<std::string>() == "BPE")) {
        fail(path, "model.type is " + model["type"].dump() + ", expected \"BPE\"");
    }
    if (!model.contains("vocab")) { fail(path, "no model.vocab"); }
    if (!model.contains("merges") || !model["merges"].is_array()) { fail(path, "no model.merges array"); }

    // Added tokens may extend the vocabulary past model.vocab.
    std::vector<std::pair<uint32_t, std::string>> added;
    std::vector<uint32_t>                         special;
    size_t                                        min_size = 0;
    if (j.contains("added_tokens")) {
        if (!j["added_tokens"].is_array()) { fail(path, "added_tokens is not an array"); }
        for (const json & t : j["added_tokens"]) {
            if (!t.is_object() || !t.contains("id") || !t["id"].is_number_unsigned() || !t.contains("content") ||
                !t["content"].is_string()) {
                fail(path, "added_tokens entry " + t.dump() + " lacks an integer id or a string content");
            }
            // the largest id sizes the token table below: bound it before allocating (from_vocab
            // refuses a vocabulary of k_max_ids tokens or more later anyway)
            const auto id = t["id"].get<uint64_t>();
            if (id >= pair_table::k_max_ids) {
                fail(path,
                     "added token id " + std::to_string(id) + " is too large (at most " + std::to_string(pair_table::k_max_ids - 1) + ")");
            }
            added.emplace_back(static_cast<uint32_t>(id), t["content"].get<std::string>());
            min_size = std::max<size_t>(min_size, id + 1);
        }
    }
    std::vector<std::string> tokens = tokens_from_vocab_object(model["vocab"], path + ": model.vocab", min_size);
    for (const auto & [id, content] : added) {
        if (!tokens[id].empty() && tokens[id] != content) {
            fail(path, "added token " + std::to_string(id) + " '" + content + "' conflicts with vocab entry '" + tokens[id] + "'");
        }
        tokens[id] = content;
        special.push_back(id);
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (tokens[i].empty()) { fail(path, "no token has id " + std::to_string(i)); }
    }

    std::vector<std::string> merges;
    merges.reserve(model["merges"].size());
    for (const json & m : model["merges"]) {
        if (m.is_string()) {
            merges.push_back(m.get<std::string>());
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
            merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
        } else {
            fail(path, "model.merges entry " + m.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
        }
    }
    const int32_t eos = find_eos(tokens, special, path);
    try {
        return tokenizer::from_vocab(std::move(tokens), merges, eos, special);
    } catch (const std::runtime_error & e) { fail(path, e.what()); }
}

std::shared_ptr<const tokenizer> load_gguf_file(const std::string & path) {
    // through our reader: its header scan keeps what ggml's parser meets unchecked from it
    const gguf_reader file(path);
    try {
        return tokenizer::from_gguf(file.gguf());
    } catch (const std::exception & e) { fail(path, e.what()); }
}

bool has_gguf_magic(const std::string & path) {
    std::ifstream f(std::filesystem::u8path(path), std::ios::binary);
    if (!f) { fail_not_found(path, "cannot open file"); }
    char magic[4] = {};
    f.read(magic, 4);
    return f.gcount() == 4 && magic[0] == 'G' && magic[1] == 'G' && magic[2] == 'U' && magic[3] == 'F';
}

bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}   // namespace

std::shared_ptr<const tokenizer> tokenizer::from_gguf(const struct gguf_context * ctx) {
    if (ctx == nullptr) { fail("GGUF", "null context"); }
    const int64_t model_id = gguf_find_key(ctx, "tokenizer.ggml.model");
    if (model_id >= 0) {
        if (gguf_get_kv_type(ctx, model_id) != GGUF_TYPE_STRING) { fail("GGUF", "key tokenizer.ggml.model is not a string"); }
        const std::string model = gguf_get_val_str(ctx, model_id);
        if (model != "gpt2") { fail("GGUF", "tokenizer.ggml.model is '" + model + "', expected 'gpt2' (byte-level BPE)"); }
    }
    std::vector<std::string>       tokens = gguf_string_array(ctx, "tokenizer.ggml.tokens");
    const std::vector<std::string> merges = gguf_string_array(ctx, "tokenizer.ggml.merges");
    const int64_t                  eos    = gguf_integer(ctx, "tokenizer.ggml.eos_token_id");
    if (eos < 0 || static_cast<uint64_t>(eos) >= tokens.size()) {
        fail("GGUF",
             "tokenizer.ggml.eos_token_id " + std::to_string(eos) + " is outside the vocabulary of " + std::to_string(tokens.size()) +
                 " tokens");
    }
    std::vector<uint32_t> special;
    const int64_t         type_id = gguf_find_key(ctx, "tokenizer.ggml.token_type");
    if (type_id >= 0) {
        if (gguf_get_kv_type(ctx, type_id) != GGUF_TYPE_ARRAY || gguf_get_arr_type(ctx, type_id) != GGUF_TYPE_INT32) {
            fail("GGUF", "key tokenizer.ggml.token_type is not an array of int32");
        }
        const size_t n = gguf_get_arr_n(ctx, type_id);
        if (n != tokens.size()) {
            fail("GGUF",
                 "tokenizer.ggml.token_type has " + std::to_string(n) + " entries for " + std::to_string(tokens.size()) + " tokens");
        }
        const auto * types = static_cast<const int32_t *>(gguf_get_arr_data(ctx, type_id));
        for (size_t i = 0; i < n; ++i) {
            if (types[i] == 3 /* control */ || types[i] == 4 /* user defined */) { special.push_back(static_cast<uint32_t>(i)); }
        }
    }
    return from_vocab(std::move(tokens), merges, static_cast<int32_t>(eos), special);
}

std::shared_ptr<const tokenizer> tokenizer::from_file(const std::string & path) {
    if (is_directory(path)) {
        const std::string tj = path + "/tokenizer.json";
        if (is_file(tj)) { return load_tokenizer_json(tj, parse_json(tj)); }
        const std::string vj = path + "/vocab.json";
        if (is_file(vj)) { return load_vocab_json(vj, path + "/merges.txt"); }
        fail_not_found(path, "folder holds neither tokenizer.json nor vocab.json + merges.txt");
    }
    if (!is_file(path)) { fail_not_found(path, "no such file or folder"); }
    if (has_gguf_magic(path)) { return load_gguf_file(path); }
    if (ends_with(path, ".gguf")) { fail(path, "not a GGUF file (bad magic)"); }
    if (ends_with(path, "merges.txt")) { return load_vocab_json(dir_of(path) + "/vocab.json", path); }
    // A JSON file: tokenizer.json has a "model" object, vocab.json is {token: id}.
    const json j = parse_json(path);
    if (ends_with(path, "tokenizer.json") || (j.is_object() && j.contains("model") && j["model"].is_object())) {
        return load_tokenizer_json(path, j);
    }
    if (j.is_object()) { return load_vocab_json(path, dir_of(path) + "/merges.txt"); }
    fail(path, "not a GGUF file, tokenizer.json or vocab.json");
}

}   // namespace gpt2
