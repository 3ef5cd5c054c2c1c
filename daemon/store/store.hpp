// The store: one SQLite file in WAL mode, one writer thread that group-commits queued writes
// (one fsync for many events, with synchronous=FULL), and pooled reader connections.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/core/result.hpp"
#include "daemon/store/repo.hpp"

namespace herald::store {

// Applies the embedded migrations in schema/ in order, each in its own transaction, tracked by
// PRAGMA user_version. Returns the schema version reached.
Result<int> migrate(Database& db);
// The number of the newest migration this binary carries.
int latest_schema_version();

struct BackupResult {
  int64_t pages = 0;
  int schema_version = 0;
};

// Copies the database at FROM to a new file TO with SQLite's online backup API: a consistent
// snapshot, taken while Herald runs and writes (WAL included). The copy is written next to TO
// and renamed into place only once complete and `PRAGMA integrity_check` passes, mode 0600.
// TO must not exist.
Result<BackupResult> backup(const std::string& from, const std::string& to);

class Store {
 public:
  using WriteFn = std::function<Status(Repo&)>;
  using Done = std::function<void(Status)>;

  // Opens (creating and migrating) the database and starts the writer thread.
  static Result<std::unique_ptr<Store>> open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // How a write shares its transaction with the others of its batch.
  //  - isolated: in its own savepoint, so that its failure undoes its own changes only.
  //  - rerunnable: for a write whose function may run more than once (it changes nothing but
  //    the database and state it overwrites on each run). A batch made only of these runs
  //    without savepoints; should one fail after changing something, the transaction is rolled
  //    back and the batch runs again from the start, each write in its own savepoint. The
  //    result is the same as with `isolated`, at a fraction of the cost.
  enum class Mode { isolated, rerunnable };

  // Queues a write. It runs on the writer thread inside a transaction shared with the other
  // queued writes; `done` runs on the writer thread after COMMIT (or with the error: the
  // write's own, or the commit's, as `unavailable`). Nothing is reported done before it is
  // durable.
  void write(WriteFn fn, Done done, Mode mode = Mode::isolated);
  // Queues a write and waits for its commit.
  Status write_sync(WriteFn fn);
  // Queues several writes at once, so that they share one commit (one fsync) unless the
  // writer's batch is full. Each runs in its own savepoint, as with write(): one's failure
  // leaves the others intact. `done` gets their statuses in order, on the writer thread, once
  // the last of them has committed (or failed).
  using DoneAll = std::function<void(std::vector<Status>)>;
  void write(std::vector<WriteFn> fns, DoneAll done);
  // The same, waiting for the commit.
  std::vector<Status> write_sync(std::vector<WriteFn> fns);

  // Runs `fn` on a pooled reader connection (a consistent snapshot for its duration).
  template <class T>
  Result<T> read(const std::function<Result<T>(Repo&)>& fn) {
    auto conn = acquire_reader();
    if (!conn) {
      return conn.error();
    }
    Result<T> result = fn_with_snapshot<T>(**conn, fn);
    release_reader(std::move(*conn));
    return result;
  }

  const std::string& path() const;
  // Group-commit statistics, for metrics and benchmarks.
  int64_t commits() const;
  int64_t committed_writes() const;
  // Where the writer's time goes: running the batches' writes, and in COMMIT (writing the WAL
  // and waiting for its fsync; a checkpoint when one is due).
  double write_seconds() const;
  double commit_seconds() const;
  // Memory SQLite holds now (page caches, statements, sorters), all connections together.
  static int64_t sqlite_memory();

  void stop();

 private:
  struct Impl;
  explicit Store(std::unique_ptr<Impl> impl);
  Result<std::unique_ptr<Database>> acquire_reader();
  void release_reader(std::unique_ptr<Database> db);

  template <class T>
  static Result<T> fn_with_snapshot(Database& db, const std::function<Result<T>(Repo&)>& fn) {
    if (auto s = db.exec("BEGIN"); !s) {
      return s.error();
    }
    Repo repo(db);
    Result<T> result = fn(repo);
    (void)db.exec("COMMIT");
    return result;
  }

  std::unique_ptr<Impl> impl_;
};

}  // namespace herald::store
