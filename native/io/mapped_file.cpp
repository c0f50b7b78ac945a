#include "io/mapped_file.h"

#include "util/error.h"

#include <cerrno>
#include <cstring>

#ifdef _WIN32
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#else
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

namespace gpt2 {

#ifdef _WIN32

mapped_file::mapped_file(const std::string & path) : path_(path) {
    int          wlen = MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, nullptr, 0);
    std::wstring wpath(wlen > 0 ? wlen - 1 : 0, L'\0');
    if (wlen > 0) MultiByteToWideChar(CP_UTF8, 0, path.c_str(), -1, wpath.data(), wlen);
    HANDLE f = CreateFileW(wpath.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, nullptr);
    if (f == INVALID_HANDLE_VALUE) throw error(codes::io, path + ": cannot open file (error " + std::to_string(GetLastError()) + ")");
    LARGE_INTEGER sz;
    if (!GetFileSizeEx(f, &sz)) {
        CloseHandle(f);
        throw error(codes::io, path + ": cannot read file size");
    }
    size_ = (size_t) sz.QuadPart;
    file_ = f;
    if (size_ == 0) return;
    HANDLE m = CreateFileMappingW(f, nullptr, PAGE_READONLY, 0, 0, nullptr);
    if (!m) {
        CloseHandle(f);
        throw error(codes::io, path + ": cannot map file");
    }
    mapping_ = m;
    data_    = (uint8_t *) MapViewOfFile(m, FILE_MAP_READ, 0, 0, 0);
    if (!data_) {
        CloseHandle(m);
        CloseHandle(f);
        throw error(codes::io, path + ": cannot map file");
    }
}

void mapped_file::release(const void *, size_t) const {
    // Windows trims a process's working set by itself; nothing to do.
}

mapped_file::~mapped_file() {
    if (data_) UnmapViewOfFile(data_);
    if (mapping_) CloseHandle((HANDLE) mapping_);
    if (file_) CloseHandle((HANDLE) file_);
}

#else

mapped_file::mapped_file(const std::string & path) : path_(path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        throw error(e == ENOENT ? codes::not_found : codes::io, path + ": cannot open file (" + std::strerror(e) + ")");
    }
    struct stat st{};
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw error(codes::io, path + ": not a regular file");
    }
    size_ = (size_t) st.st_size;
    if (size_ > 0) {
        void * p = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            ::close(fd);
            // ENOMEM: no address space left for the mapping (a memory limit), not a file problem
            throw error(e == ENOMEM ? codes::out_of_memory : codes::io, path + ": cannot map file (" + std::strerror(e) + ")");
        }
        data_ = (uint8_t *) p;
    }
    ::close(fd);   // the mapping keeps the file alive
}

void mapped_file::release(const void * p, size_t n) const {
    const uintptr_t begin = (uintptr_t) p, end = begin + n;
    if (!data_ || begin < (uintptr_t) data_ || end > (uintptr_t) data_ + size_) return;
    const uintptr_t page  = (uintptr_t) sysconf(_SC_PAGESIZE);
    const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
    if (first < last) madvise((void *) first, last - first, MADV_DONTNEED);   // advice: failure changes nothing
}

mapped_file::~mapped_file() {
    if (data_) munmap(data_, size_);
}

#endif

}   // namespace gpt2
