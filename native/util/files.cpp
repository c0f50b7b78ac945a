#include "util/files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace gpt2::files {

namespace fs = std::filesystem;

bool is_file(const std::string & path) {
    std::error_code ec;
    return fs::is_regular_file(fs::u8path(path), ec);
}

bool is_directory(const std::string & path) {
    std::error_code ec;
    return fs::is_directory(fs::u8path(path), ec);
}

std::string join(const std::string & folder, const std::string & name) { return (fs::u8path(folder) / fs::u8path(name)).u8string(); }

read_status read(const std::string & path, std::string & out) {
    std::ifstream f(fs::u8path(path), std::ios::binary);
    if (!f) return read_status::cannot_open;
    std::ostringstream ss;
    ss << f.rdbuf();
    if (f.bad()) return read_status::read_error;
    out = ss.str();
    return read_status::ok;
}

}   // namespace gpt2::files
