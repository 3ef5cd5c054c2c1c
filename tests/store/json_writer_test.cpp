#include "daemon/store/json_writer.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>

namespace herald::store {
namespace {

using nlohmann::json;

std::string reference(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// The audit trail's payloads were written with nlohmann before: the writer must give the same
// bytes, whatever the strings hold.
TEST(JsonWriter, WritesWhatNlohmannWrites) {
  const std::string strings[] = {"",
                                 "plain",
                                 "quote \" and backslash \\",
                                 "controls \b\f\n\r\t \x01 \x1f \x7f",
                                 "UTF-8: Grüße, 日本, 🚨",
                                 "invalid UTF-8: \xff\xfe and a lone \xc3",
                                 std::string("nul \0 inside", 12)};
  for (const auto& s : strings) {
    JsonWriter w;
    w.begin_object().key("a").value(s).key("b").begin_array().value(s).value(s).end_array();
    w.key("c").begin_object().key(s).value(s).end_object().end_object();
    json expected{{"a", s}, {"b", json::array({s, s})}, {"c", json{{s, s}}}};
    EXPECT_EQ(w.take(), reference(expected)) << s;
  }
}

TEST(JsonWriter, NumbersBooleansNullAndNesting) {
  JsonWriter w;
  w.begin_object()
      .key("cancelled")
      .value(size_t{3})
      .key("drill")
      .value(false)
      .key("list")
      .begin_array()
      .begin_object()
      .key("n")
      .value(-7)
      .end_object()
      .begin_object()
      .end_object()
      .begin_array()
      .end_array()
      .end_array()
      .key("max")
      .value(int64_t{9'007'199'254'740'993})
      .key("none")
      .null()
      .key("yes")
      .value(true)
      .end_object();
  json expected{{"cancelled", size_t{3}},
                {"drill", false},
                {"list", json::array({json{{"n", -7}}, json::object(), json::array()})},
                {"max", int64_t{9'007'199'254'740'993}},
                {"none", nullptr},
                {"yes", true}};
  EXPECT_EQ(w.take(), reference(expected));
}

}  // namespace
}  // namespace herald::store
