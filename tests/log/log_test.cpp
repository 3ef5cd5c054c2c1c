#include "daemon/log/log.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace herald::log {
namespace {

std::string format_with(spdlog::formatter& f, std::string_view text,
                        spdlog::level::level_enum level = spdlog::level::info) {
  spdlog::details::log_msg msg("herald", level, spdlog::string_view_t(text.data(), text.size()));
  spdlog::memory_buf_t out;
  f.format(msg, out);
  return std::string(out.data(), out.size());
}

TEST(LogFormat, JsonLineHasTimeLevelMessage) {
  auto f = json_formatter();
  std::string line =
      format_with(*f, "delivered msg_1 \"quoted\"\nsecond line", spdlog::level::warn);
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.back(), '\n');
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per record";
  auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["level"], "warning");
  EXPECT_EQ(j["message"], "delivered msg_1 \"quoted\"\nsecond line");
  EXPECT_EQ(j["logger"], "herald");
  EXPECT_TRUE(j["thread"].is_number());
  EXPECT_TRUE(std::regex_match(j["time"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
      << j["time"];
}

TEST(LogFormat, JsonReplacesInvalidUtf8) {
  auto f = json_formatter();
  auto j = nlohmann::json::parse(format_with(*f, "bad \xff byte"));
  EXPECT_EQ(j["message"], "bad \xEF\xBF\xBD byte");
}

TEST(LogFormat, TextLine) {
  auto f = text_formatter();
  EXPECT_TRUE(
      std::regex_match(format_with(*f, "hello"),
                       std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z info hello\n)")));
}

TEST(LogConfigure, RefusesUnknownValues) {
  EXPECT_FALSE(configure({"loud", "text", "stderr"}));
  EXPECT_FALSE(configure({"info", "xml", "stderr"}));
  EXPECT_FALSE(configure({"info", "text", "syslog"}));
  EXPECT_TRUE(configure({"info", "text", "stderr"}));
}

// Runs fn with standard error going to a file; returns what was written.
template <class Fn>
std::string capture_stderr(Fn fn) {
  auto path = std::filesystem::temp_directory_path() /
              ("herald-log-test-" + std::to_string(getpid()) + ".txt");
  std::fflush(stderr);
  int saved = dup(2);
  FILE* file = std::fopen(path.c_str(), "w");
  dup2(fileno(file), 2);
  fn();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::fclose(file);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  return text.str();
}

TEST(LogConfigure, JsonLinesOnStderrAndLevelChangesInPlace) {
  std::string out = capture_stderr([] {
    ASSERT_TRUE(configure({"info", "json", "stderr"}));
    spdlog::info("first {}", 1);
    spdlog::debug("hidden at info");
    ASSERT_TRUE(configure({"debug", "json", "stderr"}));
    spdlog::debug("shown at debug");
    ASSERT_TRUE(configure({"warn", "text", "stderr"}));
    spdlog::info("hidden at warn");
    spdlog::warn("text again");
  });
  std::istringstream lines(out);
  std::string line;
  std::vector<std::string> messages;
  while (std::getline(lines, line)) {
    if (line.front() == '{') {
      messages.push_back(nlohmann::json::parse(line)["message"]);
    } else {
      EXPECT_NE(line.find(" warning text again"), std::string::npos) << line;
      messages.push_back("text");
    }
  }
  EXPECT_EQ(messages, (std::vector<std::string>{"first 1", "shown at debug", "text"})) << out;
  EXPECT_EQ(current_sink(), "stderr");
  ASSERT_TRUE(configure({"info", "text", "stderr"}));
}

TEST(LogSink, AutoPicksTheJournalOnlyWhenStderrIsItsStream) {
  struct stat st {};
  ASSERT_EQ(fstat(2, &st), 0);
  std::string matching = std::to_string(static_cast<unsigned long long>(st.st_dev)) + ":" +
                         std::to_string(static_cast<unsigned long long>(st.st_ino));
  const char* before = std::getenv("JOURNAL_STREAM");
  std::string saved = before ? before : "";
  setenv("JOURNAL_STREAM", matching.c_str(), 1);
  EXPECT_TRUE(stderr_is_journal());
  setenv("JOURNAL_STREAM", "1:2", 1);
  EXPECT_FALSE(stderr_is_journal());
  setenv("JOURNAL_STREAM", "garbage", 1);
  EXPECT_FALSE(stderr_is_journal());
  unsetenv("JOURNAL_STREAM");
  EXPECT_FALSE(stderr_is_journal());
  if (before) {
    setenv("JOURNAL_STREAM", saved.c_str(), 1);
  }
}

TEST(LogSink, JournalWritesWithoutError) {
  if (!std::filesystem::exists("/run/systemd/journal/socket")) {
    GTEST_SKIP() << "no journald socket (/run/systemd/journal/socket) on this machine";
  }
  auto sink = make_journal_sink();
  spdlog::logger logger("herald-test", sink);
  logger.info("herald log_test: journal sink check");
  EXPECT_EQ(journal_failures(*sink), 0u);
}

TEST(LogSink, JournalWithoutJournaldFallsBackToStderr) {
  if (std::filesystem::exists("/run/systemd/journal/socket")) {
    GTEST_SKIP() << "journald runs here: the fallback cannot be reached";
  }
  std::string out = capture_stderr([] {
    ASSERT_TRUE(configure({"info", "text", "journal"}));
    spdlog::info("kept despite no journal");
  });
  EXPECT_EQ(current_sink(), "stderr");
  EXPECT_NE(out.find("no journald socket"), std::string::npos) << out;
  EXPECT_NE(out.find("kept despite no journal"), std::string::npos) << out;
  ASSERT_TRUE(configure({"info", "text", "stderr"}));
}

}  // namespace
}  // namespace herald::log
