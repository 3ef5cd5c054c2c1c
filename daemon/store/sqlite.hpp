// The one SQLite wrapper: RAII connection and statements, every return code checked.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/core/result.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace herald::store {

// A prepared statement. Reset and cleared on every `reset()`; cached statements are reset by
// the Database before they are handed out again.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  // Binding is 1-based, as in SQLite. Returns *this to chain.
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const std::string& text) {
    return bind(index, std::string_view(text));
  }
  Statement& bind(int index, int64_t value);
  Statement& bind(int index, int value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind(int index, bool value) { return bind(index, static_cast<int64_t>(value)); }
  Statement& bind_null(int index);
  Statement& bind_optional(int index, const std::optional<int64_t>& value);
  // Binds NULL for an empty string.
  Statement& bind_text_or_null(int index, std::string_view text);

  // Steps once: true when a row is available, false when done.
  Result<bool> step();
  // Steps to completion, for statements that return no rows.
  Status run();

  std::string text(int column) const;
  int64_t integer(int column) const;
  bool is_null(int column) const;
  std::optional<int64_t> optional_integer(int column) const;

  void reset();

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  Status bind_error_;
};

class Database {
 public:
  // Opens (creating if needed) with the per-connection settings every Herald connection uses:
  // busy_timeout, foreign_keys, synchronous=FULL, WAL. `gather_wal_writes`: through the VFS of
  // store/wal_vfs.hpp, for the one connection that writes (it relies on synchronous=FULL).
  static Result<std::unique_ptr<Database>> open(const std::string& path, bool read_only = false,
                                                bool gather_wal_writes = false);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  Status exec(std::string_view sql);
  // A cached, persistent prepared statement for SQL that runs often; reset before return.
  Result<Statement*> cached(std::string_view sql);
  Result<std::unique_ptr<Statement>> prepare(std::string_view sql);

  int64_t changes() const;
  // Rows inserted, updated or deleted on this connection since it was opened.
  int64_t total_changes() const;
  // False when no transaction is open (SQLite rolls some back by itself after an I/O error).
  bool in_transaction() const;
  int user_version();
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

  // The message of the last error on this connection.
  std::string last_error() const;

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
  // Looked up several times per event on the writer: hashed, and by string_view, so a caller's
  // string literal is not copied into a std::string first.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view sql) const { return std::hash<std::string_view>{}(sql); }
  };
  std::unordered_map<std::string, std::unique_ptr<Statement>, SqlHash, std::equal_to<>> cache_;
};

// Maps an SQLite result code to our error: disk full, I/O errors, busy and locked become
// `unavailable` (the client may retry); constraint violations `conflict`; the rest `internal`.
Error sqlite_error(int code, std::string_view what, std::string_view detail);

}  // namespace herald::store
