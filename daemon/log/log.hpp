// Herald's log: spdlog's default logger, written as text or JSON lines to standard error or to
// the systemd journal, and reconfigurable while other threads log (SIGHUP).
#pragma once

#include <spdlog/formatter.h>
#include <spdlog/sinks/sink.h>

#include <memory>
#include <string>
#include <string_view>

#include "daemon/core/result.hpp"

namespace herald::log {

struct Settings {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text, json
  std::string sink = "auto";    // auto, stderr, journal
};

// Installs Herald's logger as spdlog's default at the first call, then changes its level,
// format and sink in place: safe while other threads log. An unknown value is an error and
// changes nothing. sink = "journal" without a journald socket logs to stderr, saying so.
Status configure(const Settings& settings);

// What sink = "auto" picks: true when standard error is the journal's stream (systemd sets
// JOURNAL_STREAM to its device and inode), as for a service whose output goes to the journal.
bool stderr_is_journal();
// "journal" or "stderr": where the logger writes now.
std::string_view current_sink();

// JSON lines: {"time": "...Z", "level": "info", "message": "...", "logger": "herald",
// "thread": N}. Invalid UTF-8 in a message is replaced, never dropped.
std::unique_ptr<spdlog::formatter> json_formatter();
// "2026-12-04T10:00:00.123Z info message"
std::unique_ptr<spdlog::formatter> text_formatter();

// A sink writing to the journal through sd_journal_send: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER
// and the thread. A line the journal refuses goes to standard error instead (with a one-time
// note); journal_failures counts those lines.
std::shared_ptr<spdlog::sinks::sink> make_journal_sink();
// 0 for a sink that is not a journal sink.
size_t journal_failures(const spdlog::sinks::sink& sink);

}  // namespace herald::log
