// What the harnesses share: a private scratch folder (the loaders read paths, so each input is
// written to a file first: tmpfs makes that cheap), and the verdict on an exception: the loaders
// document gpt2::error (ERR_BAD_MODEL, ERR_IO, ...) for bad input; anything else escaping them
// (std::bad_alloc from a size read off the file, std::out_of_range, ...) is a finding.
#pragma once

#include "util/error.h"

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <unistd.h>

namespace fuzz {

inline const std::string & scratch_dir() {
    static const std::string dir = [] {
        const char * base = std::getenv("GPT2_FUZZ_TMP");
        std::string  tmpl = std::string(base && *base ? base : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp")) + "/gpt2-fuzz-XXXXXX";
        if (!mkdtemp(tmpl.data())) {
            std::perror("mkdtemp");
            std::abort();
        }
        return tmpl;
    }();
    return dir;
}

inline std::string write_file(const std::string & name, const uint8_t * data, size_t size) {
    const std::string path = scratch_dir() + "/" + name;
    std::ofstream     f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
    if (!f) {
        std::fprintf(stderr, "cannot write %s\n", path.c_str());
        std::abort();
    }
    return path;
}

inline std::string read_file(const std::string & path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::fprintf(stderr, "cannot read %s\n", path.c_str());
        std::abort();
    }
    return std::string(std::istreambuf_iterator<char>(f), {});
}

// Runs a load: returns normally on success or on the documented gpt2::error; aborts (a finding,
// libFuzzer keeps the input) on any other exception.
template <typename F> void expect_documented_errors(F && load) {
    try {
        load();
    } catch (const gpt2::error &) {
    } catch (const std::exception & e) {
        std::fprintf(stderr, "undocumented exception escaped the loader: %s\n", e.what());
        std::abort();
    }
}

// A broken invariant: print it and abort (a finding).
#define FUZZ_CHECK(cond)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            std::abort();                                                                    \
        }                                                                                    \
    } while (0)

}   // namespace fuzz
