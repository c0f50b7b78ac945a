// The project's native error: a stable string code (ERR_BAD_MODEL, ...) plus a message.
// The addon turns it into the JS Gpt2Error with the same code; `kind` picks TypeError/RangeError
// for argument errors so that C++ re-checks of user input surface like the TS checks do.
#pragma once

#include <stdexcept>
#include <string>

namespace gpt2 {

enum class error_kind { coded, type, range };

class error : public std::runtime_error {
public:
    error(std::string code, const std::string & message, error_kind kind = error_kind::coded)
        : std::runtime_error(message), code_(std::move(code)), kind_(kind) {}

    const std::string & code() const { return code_; }
    error_kind          kind() const { return kind_; }

private:
    std::string code_;
    error_kind  kind_;
};

// ERR_BAD_MODEL naming the file and the failed check.
inline error bad_model(const std::string & path, const std::string & what) {
    return error("ERR_BAD_MODEL", path + ": " + what);
}

inline error range_error(const std::string & message) { return error("ERR_OUT_OF_RANGE", message, error_kind::range); }

} // namespace gpt2
