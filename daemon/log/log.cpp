#include "daemon/log/log.hpp"

#include <fmt/format.h>
#include <spdlog/details/os.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/dist_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <mutex>

namespace herald::log {
namespace {

std::string utc_time(spdlog::log_clock::time_point tp) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(tp.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  if (ms % 1000 < 0) {
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03}Z", buf, ((ms % 1000) + 1000) % 1000);
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    nlohmann::json j{{"time", utc_time(msg.time)},
                     {"level", std::string(spdlog::level::to_string_view(msg.level).data(),
                                           spdlog::level::to_string_view(msg.level).size())},
                     {"message", std::string(msg.payload.data(), msg.payload.size())},
                     {"logger", std::string(msg.logger_name.data(), msg.logger_name.size())},
                     {"thread", msg.thread_id}};
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }
};

int priority(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
    case spdlog::level::debug:
      return LOG_DEBUG;
    case spdlog::level::info:
      return LOG_INFO;
    case spdlog::level::warn:
      return LOG_WARNING;
    case spdlog::level::err:
      return LOG_ERR;
    case spdlog::level::critical:
      return LOG_CRIT;
    default:
      return LOG_INFO;
  }
}

class JournalSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  size_t failures() const { return failures_.load(); }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    int length = static_cast<int>(std::min<size_t>(msg.payload.size(), 1 << 30));
    int err = sd_journal_send("MESSAGE=%.*s", length, msg.payload.data(), "PRIORITY=%d",
                              priority(msg.level), "SYSLOG_IDENTIFIER=herald", "TID=%zu",
                              msg.thread_id, nullptr);
    if (err < 0) {
      if (failures_.fetch_add(1) == 0) {
        std::fprintf(stderr, "herald: cannot write to the journal (%s): logging to stderr\n",
                     std::strerror(-err));
      }
      spdlog::memory_buf_t formatted;
      formatter_->format(msg, formatted);
      std::fwrite(formatted.data(), 1, formatted.size(), stderr);
    }
  }
  void flush_() override {}

 private:
  std::atomic<size_t> failures_{0};
};

}  // namespace

std::shared_ptr<spdlog::sinks::sink> make_journal_sink() {
  auto sink = std::make_shared<JournalSink>();
  sink->set_formatter(text_formatter());
  return sink;
}

size_t journal_failures(const spdlog::sinks::sink& sink) {
  const auto* journal = dynamic_cast<const JournalSink*>(&sink);
  return journal ? journal->failures() : 0;
}

std::unique_ptr<spdlog::formatter> json_formatter() {
  return std::make_unique<JsonFormatter>();
}

std::unique_ptr<spdlog::formatter> text_formatter() {
  return std::make_unique<spdlog::pattern_formatter>("%Y-%m-%dT%H:%M:%S.%eZ %l %v",
                                                     spdlog::pattern_time_type::utc);
}

bool stderr_is_journal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  if (stream == nullptr) {
    return false;
  }
  unsigned long long dev = 0;
  unsigned long long ino = 0;
  if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) {
    return false;
  }
  struct stat st {};
  if (fstat(2, &st) != 0) {
    return false;
  }
  return static_cast<unsigned long long>(st.st_dev) == dev &&
         static_cast<unsigned long long>(st.st_ino) == ino;
}

namespace {

constexpr const char* kJournalSocket = "/run/systemd/journal/socket";

struct State {
  std::mutex mutex;
  std::shared_ptr<spdlog::sinks::dist_sink_mt> dist;
  std::shared_ptr<spdlog::logger> logger;
  std::string sink = "stderr";
};

State& state() {
  static State s;
  return s;
}

}  // namespace

std::string_view current_sink() {
  std::lock_guard lock(state().mutex);
  return state().sink;
}

Status configure(const Settings& settings) {
  auto level = spdlog::level::from_str(settings.level);
  if (level == spdlog::level::off && settings.level != "off") {
    return make_error(ErrorKind::invalid, "invalid_log_level",
                      fmt::format("unknown log level \"{}\"", settings.level));
  }
  if (settings.format != "text" && settings.format != "json") {
    return make_error(ErrorKind::invalid, "invalid_log_format",
                      fmt::format("unknown log format \"{}\"", settings.format));
  }
  bool journal = false;
  if (settings.sink == "journal") {
    journal = true;
  } else if (settings.sink == "auto") {
    journal = stderr_is_journal();
  } else if (settings.sink != "stderr") {
    return make_error(ErrorKind::invalid, "invalid_log_sink",
                      fmt::format("unknown log sink \"{}\"", settings.sink));
  }

  // sd_journal_send drops lines silently when journald is absent: check for its socket.
  bool no_journald = journal && access(kJournalSocket, W_OK) != 0;
  if (no_journald) {
    journal = false;
  }
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (journal) {
    sink = make_journal_sink();
  } else {
    sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  }
  // The journal takes the message alone (it has its own time and priority fields); the
  // formatter there only serves the fallback to stderr.
  sink->set_formatter(settings.format == "json" ? json_formatter() : text_formatter());

  State& s = state();
  std::lock_guard lock(s.mutex);
  if (!s.logger) {
    s.dist = std::make_shared<spdlog::sinks::dist_sink_mt>();
    s.logger = std::make_shared<spdlog::logger>("herald", s.dist);
    s.logger->flush_on(spdlog::level::trace);
    spdlog::set_default_logger(s.logger);
  }
  s.dist->set_sinks({sink});
  s.logger->set_level(level);
  s.sink = journal ? "journal" : "stderr";
  if (no_journald) {
    s.logger->warn("log: no journald socket at {}: logging to stderr instead", kJournalSocket);
  }
  return {};
}

}  // namespace herald::log
