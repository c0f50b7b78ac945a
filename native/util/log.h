// Native logging. Silent by default; the addon installs a sink (a non-referencing thread-safe
// function into JS) when the user enables logs. Callable from any thread.
#pragma once

#include <functional>
#include <string>

namespace gpt2 {

enum class log_level { debug = 0, info = 1, warn = 2, error = 3 };

using log_sink = std::function<void(log_level, const std::string & source, const std::string & text)>;

void log_set_sink(log_sink sink, log_level min_level);   // nullptr: silent
void log_write(log_level level, const char * source, const std::string & text);

}   // namespace gpt2
