#include "util/log.h"

#include <mutex>

namespace gpt2 {

static std::mutex g_log_mutex;
static log_sink   g_sink;
static log_level  g_min = log_level::warn;

void log_set_sink(log_sink sink, log_level min_level) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    g_sink = std::move(sink);
    g_min  = min_level;
}

void log_write(log_level level, const char * source, const std::string & text) {
    std::lock_guard<std::mutex> lock(g_log_mutex);
    if (!g_sink || level < g_min) return;
    g_sink(level, source, text);
}

}   // namespace gpt2
