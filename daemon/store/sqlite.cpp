#include "daemon/store/sqlite.hpp"

#include <sqlite3.h>

#include <fmt/format.h>

#include "daemon/store/wal_vfs.hpp"

namespace herald::store {

Error sqlite_error(int code, std::string_view what, std::string_view detail) {
  int primary = code & 0xFF;
  ErrorKind kind = ErrorKind::internal;
  std::string name = "storage_error";
  switch (primary) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
      kind = ErrorKind::unavailable;
      name = "storage_unavailable";
      break;
    case SQLITE_CONSTRAINT:
      kind = ErrorKind::conflict;
      name = "conflict";
      break;
    default:
      break;
  }
  return make_error(kind, name, fmt::format("{}: {} ({})", what, detail, sqlite3_errstr(code)));
}

Statement::~Statement() {
  sqlite3_finalize(stmt_);
}

namespace {
// Binding runs dozens of times per event: the error is built only when there is one.
void check_bind(Status& into, sqlite3* db, int rc) {
  if (rc != SQLITE_OK) {
    into = sqlite_error(rc, "bind", sqlite3_errmsg(db));
  }
}
}  // namespace

Statement& Statement::bind(int index, std::string_view text) {
  if (bind_error_) {
    check_bind(
        bind_error_, db_,
        sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
  }
  return *this;
}

Statement& Statement::bind(int index, int64_t value) {
  if (bind_error_) {
    check_bind(bind_error_, db_, sqlite3_bind_int64(stmt_, index, value));
  }
  return *this;
}

Statement& Statement::bind_null(int index) {
  if (bind_error_) {
    check_bind(bind_error_, db_, sqlite3_bind_null(stmt_, index));
  }
  return *this;
}

Statement& Statement::bind_optional(int index, const std::optional<int64_t>& value) {
  return value ? bind(index, *value) : bind_null(index);
}

Statement& Statement::bind_text_or_null(int index, std::string_view text) {
  return text.empty() ? bind_null(index) : bind(index, text);
}

Result<bool> Statement::step() {
  if (!bind_error_) {
    return bind_error_.error();
  }
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    return true;
  }
  if (rc == SQLITE_DONE) {
    return false;
  }
  return sqlite_error(rc, "step", sqlite3_errmsg(db_));
}

Status Statement::run() {
  while (true) {
    auto r = step();
    if (!r) {
      return r.error();
    }
    if (!*r) {
      return {};
    }
  }
}

std::string Statement::text(int column) const {
  auto* p = sqlite3_column_text(stmt_, column);
  if (p == nullptr) {
    return {};
  }
  return std::string(reinterpret_cast<const char*>(p),
                     static_cast<size_t>(sqlite3_column_bytes(stmt_, column)));
}

int64_t Statement::integer(int column) const {
  return sqlite3_column_int64(stmt_, column);
}

bool Statement::is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::optional<int64_t> Statement::optional_integer(int column) const {
  if (is_null(column)) {
    return std::nullopt;
  }
  return integer(column);
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  if (!bind_error_) {
    bind_error_ = Status{};
  }
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path, bool read_only,
                                                 bool gather_wal_writes) {
  sqlite3* raw = nullptr;
  int flags = SQLITE_OPEN_NOMUTEX |
              (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  const char* vfs = gather_wal_writes && !read_only ? coalescing_wal_vfs() : nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, vfs);
  if (rc != SQLITE_OK) {
    std::string detail = raw ? sqlite3_errmsg(raw) : "out of memory";
    sqlite3_close(raw);
    return sqlite_error(rc, fmt::format("cannot open database {}", path), detail);
  }
  std::unique_ptr<Database> db(new Database(raw, path));
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, 5000);
  // FULL: an acknowledged event must survive power loss, not only a process crash.
  for (const char* pragma : {"PRAGMA foreign_keys=ON", "PRAGMA synchronous=FULL"}) {
    if (auto s = db->exec(pragma); !s) {
      return s.error();
    }
  }
  if (!read_only) {
    if (auto s = db->exec("PRAGMA journal_mode=WAL"); !s) {
      return s.error();
    }
  }
  return db;
}

Database::~Database() {
  cache_.clear();
  sqlite3_close_v2(db_);
}

Status Database::exec(std::string_view sql) {
  char* message = nullptr;
  std::string owned(sql);
  int rc = sqlite3_exec(db_, owned.c_str(), nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string detail = message ? message : sqlite3_errmsg(db_);
    sqlite3_free(message);
    return sqlite_error(rc, "exec", detail);
  }
  return {};
}

Result<Statement*> Database::cached(std::string_view sql) {
  auto it = cache_.find(sql);
  if (it != cache_.end()) {
    it->second->reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return sqlite_error(rc, "prepare", sqlite3_errmsg(db_));
  }
  auto [pos, _] = cache_.emplace(sql, std::make_unique<Statement>(db_, stmt));
  return pos->second.get();
}

Result<std::unique_ptr<Statement>> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return sqlite_error(rc, "prepare", sqlite3_errmsg(db_));
  }
  return std::make_unique<Statement>(db_, stmt);
}

int64_t Database::changes() const {
  return sqlite3_changes64(db_);
}

int64_t Database::total_changes() const {
  return sqlite3_total_changes64(db_);
}

bool Database::in_transaction() const {
  return sqlite3_get_autocommit(db_) == 0;
}

int Database::user_version() {
  auto stmt = prepare("PRAGMA user_version");
  if (!stmt) {
    return -1;
  }
  auto row = (*stmt)->step();
  return row && *row ? static_cast<int>((*stmt)->integer(0)) : -1;
}

std::string Database::last_error() const {
  return sqlite3_errmsg(db_);
}

}  // namespace herald::store
