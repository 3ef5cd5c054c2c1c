// Compact JSON written straight into a string, byte for byte what nlohmann's dump() makes of
// the same value (no spaces; objects with their keys in sorted order, as nlohmann::json keeps
// them; the same escapes), without building a document first. Audit payloads are written
// several times per ingested event, on the single writer thread: there the document and its
// allocations cost more than the database work they describe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace herald::store {

class JsonWriter {
 public:
  // Keys must come in sorted order (std::less<std::string>), as nlohmann writes them.
  JsonWriter& begin_object() { return open('{'); }
  JsonWriter& end_object() { return close('}'); }
  JsonWriter& begin_array() { return open('['); }
  JsonWriter& end_array() { return close(']'); }

  JsonWriter& key(std::string_view name) {
    separate();
    put_string(name);
    out_ += ':';
    after_key_ = true;
    return *this;
  }

  JsonWriter& value(std::string_view text) {
    separate();
    put_string(text);
    return *this;
  }
  JsonWriter& value(const char* text) { return value(std::string_view(text)); }
  JsonWriter& value(const std::string& text) { return value(std::string_view(text)); }
  JsonWriter& value(int64_t number) {
    separate();
    out_ += std::to_string(number);
    return *this;
  }
  JsonWriter& value(int number) { return value(static_cast<int64_t>(number)); }
  JsonWriter& value(size_t number) {
    separate();
    out_ += std::to_string(number);
    return *this;
  }
  JsonWriter& value(bool flag) {
    separate();
    out_ += flag ? "true" : "false";
    return *this;
  }
  JsonWriter& null() {
    separate();
    out_ += "null";
    return *this;
  }

  std::string take() { return std::move(out_); }

 private:
  JsonWriter& open(char c) {
    separate();
    out_ += c;
    first_.push_back(true);
    return *this;
  }

  JsonWriter& close(char c) {
    out_ += c;
    first_.pop_back();
    return *this;
  }

  // A comma before every element but the first of its container, none after a key.
  void separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_.empty()) {
      if (!first_.back()) {
        out_ += ',';
      }
      first_.back() = false;
    }
  }

  void put_string(std::string_view s) {
    // Plain ASCII is copied as is; anything else (escapes, UTF-8, invalid bytes) is left to
    // nlohmann, invalid UTF-8 replaced by U+FFFD as the audit trail's other writers do.
    for (unsigned char c : s) {
      if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) {
        out_ += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return;
      }
    }
    out_ += '"';
    out_ += s;
    out_ += '"';
  }

  std::string out_;
  std::vector<bool> first_;
  bool after_key_ = false;
};

}  // namespace herald::store
