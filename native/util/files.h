// Small filesystem helpers shared by the loaders. Paths are UTF-8 on every platform. They report
// and do not throw: each caller turns a failure into its own error (ERR_NOT_FOUND, ERR_IO, ...).
#pragma once

#include <string>

namespace gpt2::files {

bool        is_file(const std::string & path);
bool        is_directory(const std::string & path);
std::string join(const std::string & folder, const std::string & name);

enum class read_status { ok, cannot_open, read_error };
// The whole file into `out`.
read_status read(const std::string & path, std::string & out);

}   // namespace gpt2::files
