// Memory taken from and given back to the system by whole pages, for large buffers whose
// size is fixed up front but whose use grows over time.
#pragma once

#include <cstddef>

namespace gpt2::pages {

// Anonymous pages that the system zero-fills on first touch, so that only the pages written so
// far count in the process's resident memory (a KV cache reserved for many slots or a long
// context costs what its sequences have reached). Empty (data() null) where the platform has no
// such mapping or it failed: the caller then allocates and zeroes memory itself.
class zeroed {
public:
    zeroed() = default;
    explicit zeroed(size_t bytes);
    ~zeroed();
    zeroed(zeroed && o) noexcept;
    zeroed & operator=(zeroed && o) noexcept;
    zeroed(const zeroed &)             = delete;
    zeroed & operator=(const zeroed &) = delete;

    void * data() const { return data_; }
    size_t size() const { return size_; }

private:
    void * data_ = nullptr;
    size_t size_ = 0;
};

// Gives the C heap's free pages back to the system. Loading a model or a tokenizer parses
// metadata into many short-lived strings on a libuv pool thread, and glibc keeps that thread's
// freed arena memory resident (≈ 7 MiB for GPT-2's vocabulary) for the life of the process. A
// no-op where the C library has no such call.
void release_free_heap();

}   // namespace gpt2::pages
