#include "util/pages.h"

#include <cstdlib>   // defines __GLIBC__ where glibc is the C library
#include <utility>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define GPT2_NODE_HAVE_MMAP 1
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace gpt2::pages {

zeroed::zeroed(size_t bytes) {
#if defined(GPT2_NODE_HAVE_MMAP)
    if (bytes == 0) return;
    void * p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    data_ = p;
    size_ = bytes;
#else
    (void) bytes;
#endif
}

zeroed::~zeroed() {
#if defined(GPT2_NODE_HAVE_MMAP)
    if (data_) munmap(data_, size_);
#endif
}

zeroed::zeroed(zeroed && o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

zeroed & zeroed::operator=(zeroed && o) noexcept {
    if (this != &o) {
        zeroed gone(std::move(*this));
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

void release_free_heap() {
#if defined(__GLIBC__)
    malloc_trim(0);   // every arena, free pages inside the heap included (glibc >= 2.8)
#endif
}

}   // namespace gpt2::pages
