// A read-only memory mapping of a whole file (POSIX mmap / Windows file mapping).
// Weights stay in the page cache and are shared between processes that load the same model.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gpt2 {

class mapped_file {
public:
    explicit mapped_file(const std::string & path);   // throws gpt2::error ERR_BAD_MODEL / ERR_IO
    ~mapped_file();
    mapped_file(const mapped_file &)             = delete;
    mapped_file & operator=(const mapped_file &) = delete;

    const uint8_t *     data() const { return data_; }
    size_t              size() const { return size_; }
    const std::string & path() const { return path_; }
    // Drops the whole pages inside [p, p + n) from this process's resident memory (they stay in
    // the page cache and come back on the next read): for bytes that were copied elsewhere.
    void release(const void * p, size_t n) const;

private:
    std::string path_;
    uint8_t *   data_ = nullptr;
    size_t      size_ = 0;
#ifdef _WIN32
    void * file_    = nullptr;
    void * mapping_ = nullptr;
#endif
};

}   // namespace gpt2
