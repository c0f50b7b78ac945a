// Reads a GGUF file's metadata and tensor table through ggml's gguf parser, with typed getters
// that check a key's type before reading it (ggml's getters GGML_ASSERT on a type mismatch), and
// binds tensor data to a read-only memory mapping of the file.
//
// Not GPT-2 specific: the GPT-2 checks live in gpt/model.cpp.
#pragma once

#include "io/mapped_file.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

struct gguf_context;
struct ggml_context;
struct ggml_tensor;
struct ggml_backend_buffer;

namespace gpt2 {

class gguf_reader {
public:
    explicit gguf_reader(const std::string & path);   // throws ERR_BAD_MODEL / ERR_NOT_FOUND / ERR_IO
    ~gguf_reader();
    gguf_reader(const gguf_reader &)             = delete;
    gguf_reader & operator=(const gguf_reader &) = delete;

    const std::string &  path() const { return path_; }
    const gguf_context * gguf() const { return parsed(); }

    bool has(const char * key) const;
    // Integer keys accept any GGUF integer type whose value fits; absent → nullopt; wrong type → throws.
    std::optional<uint64_t>    get_uint(const char * key) const;
    std::optional<float>       get_float(const char * key) const;
    std::optional<std::string> get_string(const char * key) const;

    // The tensors (no data until bind_data()), for lookups by name.
    ggml_context * meta() const { return meta_; }
    // nullptr when absent. Tensors have no data until bind_data().
    ggml_tensor * tensor(const std::string & name) const;
    int64_t       n_tensors() const;

    // Maps the file and points every tensor at its bytes (after checking each lies inside the file).
    void bind_data();
    // Frees the parsed metadata (every key's value: for GPT-2, 100k token and merge strings, a few
    // MiB) once the model has read what it needs. Afterwards only meta(), tensor() and release()
    // may be used; the metadata getters throw std::logic_error.
    void   drop_metadata();
    size_t file_size() const { return file_ ? file_->size() : 0; }
    // See mapped_file::release(): for tensor bytes that were copied elsewhere.
    void release(const void * p, size_t n) const {
        if (file_) file_->release(p, n);
    }

private:
    [[noreturn]] void fail(const std::string & what) const;
    // What in the header ggml's parser would meet unchecked (an element count past 64 bits, a
    // type number outside its enums), or "": scanned before ggml parses.
    std::string          header_problem() const;
    const gguf_context * parsed() const;

    std::string                  path_;
    gguf_context *               gguf_ = nullptr;
    ggml_context *               meta_ = nullptr;
    std::unique_ptr<mapped_file> file_;
    ggml_backend_buffer *        buffer_ = nullptr;
};

// ggml's own log output (e.g. why gguf parsing failed), routed to us: the last error line is
// kept per thread so a load error can say what ggml saw; lines are forwarded to the logger.
void        ggml_log_capture_install();
std::string ggml_log_take_last_error();

}   // namespace gpt2
