// Small helpers for modules that keep their own SQL (drills, obligations, reports): run a
// statement with bound parameters and collect its rows.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/store/sqlite.hpp"

namespace herald::store {

inline int64_t to_ms(Timestamp t) {
  return t.time_since_epoch().count();
}
inline Timestamp from_ms(int64_t v) {
  return Timestamp{Millis{v}};
}

// Runs a cached statement after `bind` and calls `each` with the statement at every row: for
// aggregates over many rows, which need not be held in memory at once.
template <class Bind, class Each>
Status for_each_row(Database& db, std::string_view sql, Bind bind, Each each) {
  auto stmt = db.cached(sql);
  if (!stmt) {
    return stmt.error();
  }
  bind(**stmt);
  while (true) {
    auto r = (*stmt)->step();
    if (!r) {
      (*stmt)->reset();
      return r.error();
    }
    if (!*r) {
      break;
    }
    each(**stmt);
  }
  (*stmt)->reset();
  return {};
}

// Runs a cached statement after `bind` and collects rows with `row`.
template <class T, class Bind, class Row>
Result<std::vector<T>> select_rows(Database& db, std::string_view sql, Bind bind, Row row) {
  std::vector<T> out;
  auto st = for_each_row(db, sql, bind, [&](Statement& s) { out.push_back(row(s)); });
  if (!st) {
    return st.error();
  }
  return out;
}

// Runs a statement that returns no rows; the number of rows it changed.
template <class Bind>
Result<int64_t> run_sql(Database& db, std::string_view sql, Bind bind) {
  auto stmt = db.cached(sql);
  if (!stmt) {
    return stmt.error();
  }
  bind(**stmt);
  auto s = (*stmt)->run();
  (*stmt)->reset();
  if (!s) {
    return s.error();
  }
  return db.changes();
}

}  // namespace herald::store
