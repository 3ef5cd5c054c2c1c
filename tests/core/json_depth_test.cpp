#include "daemon/core/json_depth.hpp"

#include <string>

#include <gtest/gtest.h>

namespace herald {
namespace {

std::string nested(size_t depth) {
  return std::string(depth, '[') + std::string(depth, ']');
}

TEST(JsonDepth, Table) {
  struct Case {
    std::string text;
    size_t limit;
    bool within;
  };
  const Case cases[] = {
      {"", 2, true},
      {"42", 0, true},
      {"[]", 0, false},
      {"[]", 1, true},
      {R"({"a": [1, {"b": 2}]})", 3, true},
      {R"({"a": [1, {"b": 2}]})", 2, false},
      {R"([[], [], []])", 2, true},      // siblings do not add up
      {R"(["[[[[", "{{{{"])", 1, true},  // brackets in strings do not count
      {R"(["\"[[[["])", 1, true},        // nor after an escaped quote
      {R"(["\\", [[]]])", 2, false},     // an escaped backslash ends before the quote
      {"]]]][[", 2, true},               // not JSON: the parser refuses it, the count stays sane
      {nested(64), 64, true},
      {nested(65), 64, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(json_depth_within(c.text, c.limit), c.within) << c.text << " limit " << c.limit;
  }
}

TEST(JsonDepth, DefaultLimitRefusesAMillionLevels) {
  EXPECT_TRUE(json_depth_within(nested(kMaxJsonDepth)));
  EXPECT_FALSE(json_depth_within(nested(1'000'000)));
}

}  // namespace
}  // namespace herald
