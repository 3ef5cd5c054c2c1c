#include "daemon/store/store.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace herald::store {

// Generated from schema/*.sql by cmake/Embed.cmake.
const std::vector<std::pair<std::string_view, std::string_view>>& schema_files();

namespace {

// "001_initial.sql" → 1
int migration_number(std::string_view name) {
  int n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') {
      break;
    }
    n = n * 10 + (c - '0');
  }
  return n;
}

std::vector<std::pair<int, std::string_view>> migrations() {
  std::vector<std::pair<int, std::string_view>> out;
  for (const auto& [name, sql] : schema_files()) {
    if (name.size() > 4 && name.substr(name.size() - 4) == ".sql" && migration_number(name) > 0) {
      out.emplace_back(migration_number(name), sql);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

constexpr size_t kMaxBatch = 512;
constexpr size_t kReaderPool = 8;

}  // namespace

Result<BackupResult> backup(const std::string& from, const std::string& to) {
  auto fail = [](std::string message) -> Error {
    return make_error(ErrorKind::internal, "backup_failed", std::move(message));
  };
  std::error_code ec;
  if (std::filesystem::exists(to, ec)) {
    return fail(to + " exists already: choose a new name, or move it away first");
  }
  if (!std::filesystem::exists(from, ec)) {
    return fail(from + ": no such database");
  }
  auto src = Database::open(from, /*read_only=*/true);
  if (!src) {
    return src.error();
  }
  std::string partial = to + ".partial";
  std::filesystem::remove(partial, ec);
  sqlite3* dst = nullptr;
  int rc =
      sqlite3_open_v2(partial.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  if (rc != SQLITE_OK) {
    std::string why = dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc);
    sqlite3_close(dst);
    return fail("cannot create " + partial + ": " + why);
  }
  std::filesystem::permissions(
      partial, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write, ec);
  BackupResult result;
  std::string error;
  sqlite3_backup* b = sqlite3_backup_init(dst, "main", (*src)->raw(), "main");
  if (b == nullptr) {
    error = sqlite3_errmsg(dst);
  } else {
    // A page batch at a time: the daemon's writer is never held up for long. Busy or locked
    // (a checkpoint running) is retried, within a bound.
    for (int busy = 0;;) {
      rc = sqlite3_backup_step(b, 1024);
      if (rc == SQLITE_DONE) {
        break;
      }
      if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        if (++busy > 6000) {
          error = "the database stayed busy for 5 minutes";
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      if (rc != SQLITE_OK) {
        error = sqlite3_errstr(rc);
        break;
      }
    }
    result.pages = sqlite3_backup_pagecount(b);
    if (sqlite3_backup_finish(b) != SQLITE_OK && error.empty()) {
      error = sqlite3_errmsg(dst);
    }
  }
  if (error.empty()) {
    sqlite3_stmt* stmt = nullptr;
    std::string check;
    if (sqlite3_prepare_v2(dst, "PRAGMA integrity_check", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      check = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    if (check != "ok") {
      error = "the copy fails PRAGMA integrity_check: " + check;
    }
    if (sqlite3_prepare_v2(dst, "PRAGMA user_version", -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW) {
      result.schema_version = sqlite3_column_int(stmt, 0);
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(dst);  // checkpoints the copy's WAL back into the file: one file to keep
  if (!error.empty()) {
    std::filesystem::remove(partial, ec);
    return fail("backup of " + from + " failed: " + error);
  }
  std::filesystem::rename(partial, to, ec);
  if (ec) {
    std::filesystem::remove(partial, ec);
    return fail("cannot rename " + partial + " to " + to + ": " + ec.message());
  }
  return result;
}

int latest_schema_version() {
  auto all = migrations();
  return all.empty() ? 0 : all.back().first;
}

Result<int> migrate(Database& db) {
  int current = db.user_version();
  if (current < 0) {
    return make_error(ErrorKind::internal, "migration_failed", "cannot read PRAGMA user_version");
  }
  if (current > latest_schema_version()) {
    return make_error(ErrorKind::internal, "schema_too_new",
                      "database schema version " + std::to_string(current) +
                          " is newer than this herald (" + std::to_string(latest_schema_version()) +
                          "): upgrade herald");
  }
  for (const auto& [number, sql] : migrations()) {
    if (number <= current) {
      continue;
    }
    if (auto s = db.exec("BEGIN IMMEDIATE"); !s) {
      return s.error();
    }
    auto s = db.exec(sql);
    if (s) {
      s = db.exec("PRAGMA user_version=" + std::to_string(number));
    }
    if (s) {
      s = db.exec("COMMIT");
    }
    if (!s) {
      (void)db.exec("ROLLBACK");
      Error e = s.error();
      e.message = "migration " + std::to_string(number) + " failed: " + e.message;
      return e;
    }
    spdlog::info("database {}: applied migration {}", db.path(), number);
    current = number;
  }
  return current;
}

struct Store::Impl {
  struct Job {
    WriteFn fn;
    Done done;
    Mode mode = Mode::isolated;
  };

  std::string path;
  std::unique_ptr<Database> writer;

  std::mutex mutex;
  std::condition_variable wake;
  std::deque<Job> queue;
  bool stopping = false;
  std::thread thread;

  std::mutex readers_mutex;
  std::vector<std::unique_ptr<Database>> readers;

  std::atomic<int64_t> commits{0};
  std::atomic<int64_t> committed_writes{0};
  // Time the writer spent in its batches' writes and in their COMMITs (the fsync), in µs.
  std::atomic<int64_t> write_micros{0};
  std::atomic<int64_t> commit_micros{0};

  // Checkpoints (copying the WAL's pages back into the database file, with an fsync of each)
  // run on a thread of their own, so that a commit costs the writer its WAL write and one
  // fsync, never a checkpoint's as well. Past kCheckpointPages in the WAL the checkpointer is
  // woken; a passive checkpoint never blocks the writer, and once it has copied everything the
  // writer's next transaction starts the WAL from its beginning again. Should it fall behind
  // (the writer appends while it copies), past kWriterCheckpointPages the writer checkpoints
  // itself: the WAL stays bounded. 4000 pages (16 MB) rather than SQLite's 1000: a checkpoint
  // copies each page once however often it changed, and the tails of the tables and indexes
  // change at every commit, so fewer, larger checkpoints write far less (ingest at
  // concurrency 32: 10,100-10,200 -> 11,200-11,400 events/s, bench/README.md).
  static constexpr int kCheckpointPages = 4000;
  static constexpr int kWriterCheckpointPages = 4 * kCheckpointPages;

  std::unique_ptr<Database> checkpointer;
  std::thread checkpoint_thread;
  std::mutex checkpoint_mutex;
  std::condition_variable checkpoint_wake;
  bool checkpoint_due = false;
  bool checkpoint_stopping = false;

  // SQLite's WAL hook: runs on the writer thread after each commit, with the WAL's size.
  static int on_wal_commit(void* self, sqlite3* db, const char* name, int pages) {
    auto* impl = static_cast<Impl*>(self);
    if (pages >= kWriterCheckpointPages) {
      (void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    } else if (pages >= kCheckpointPages) {
      {
        std::lock_guard lock(impl->checkpoint_mutex);
        impl->checkpoint_due = true;
      }
      impl->checkpoint_wake.notify_one();
    }
    return SQLITE_OK;
  }

  void run_checkpoints() {
    while (true) {
      {
        std::unique_lock lock(checkpoint_mutex);
        checkpoint_wake.wait(lock, [&] { return checkpoint_stopping || checkpoint_due; });
        if (checkpoint_stopping) {
          return;
        }
        checkpoint_due = false;
      }
      // Busy (the writer is checkpointing itself) or an I/O error: the next commit past the
      // threshold wakes us again.
      (void)sqlite3_wal_checkpoint_v2(checkpointer->raw(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                      nullptr, nullptr);
    }
  }

  void run() {
    std::vector<Job> batch;
    while (true) {
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) {
          return;  // stopping, and everything queued has been written
        }
        while (!queue.empty() && batch.size() < kMaxBatch) {
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      commit_batch(batch);
      batch.clear();
    }
  }

  // Transaction control runs several times per event: prepared once, not parsed each time.
  Status control(const std::string& sql) {
    auto stmt = writer->cached(sql);
    if (!stmt) {
      return stmt.error();
    }
    Status s = (*stmt)->run();
    (*stmt)->reset();
    return s;
  }

  // One transaction for the whole batch. A batch of rerunnable writes first runs without
  // savepoints; if one of them fails after changing something, the transaction is rolled back
  // and the batch runs again the careful way, each write in its own savepoint, so one write's
  // failure leaves the others intact.
  void commit_batch(std::vector<Job>& batch) {
    const auto started = std::chrono::steady_clock::now();
    commit_spent = {};
    std::vector<Status> results(batch.size());
    bool rerunnable = std::all_of(batch.begin(), batch.end(),
                                  [](const Job& job) { return job.mode == Mode::rerunnable; });
    std::optional<Status> outcome;
    if (rerunnable) {
      outcome = run_without_savepoints(batch, results);
    }
    if (!outcome) {
      outcome = run_with_savepoints(batch, results);
    }
    const auto spent = std::chrono::steady_clock::now() - started;
    write_micros.fetch_add(micros(spent - commit_spent), std::memory_order_relaxed);
    commit_micros.fetch_add(micros(commit_spent), std::memory_order_relaxed);
    if (!*outcome) {
      for (auto& job : batch) {
        job.done(outcome->error());
      }
      return;
    }
    int64_t ok_count =
        std::count_if(results.begin(), results.end(), [](const Status& s) { return s.ok(); });
    commits.fetch_add(1, std::memory_order_relaxed);
    committed_writes.fetch_add(ok_count, std::memory_order_relaxed);
    for (size_t i = 0; i < batch.size(); ++i) {
      batch[i].done(std::move(results[i]));
    }
  }

  // Savepoints cost more than the rest of an event's writes: SQLite copies every page a write
  // touches that an earlier write of the batch already changed (most of them: the tails of the
  // same tables and indexes) into the savepoint's journal. A write that fails without having
  // changed anything (a validation error) needs no undo. Returns std::nullopt when the batch
  // must run again with savepoints (the transaction is then rolled back), else how the commit
  // went.
  std::optional<Status> run_without_savepoints(std::vector<Job>& batch,
                                               std::vector<Status>& results) {
    if (Status begun = control(kBegin); !begun) {
      return begun;
    }
    Repo repo(*writer);
    for (size_t i = 0; i < batch.size(); ++i) {
      const int64_t before = writer->total_changes();
      results[i] = batch[i].fn(repo);
      if (!results[i] && (writer->total_changes() != before || !writer->in_transaction())) {
        (void)writer->exec("ROLLBACK");  // fails harmlessly when SQLite already rolled back
        return std::nullopt;
      }
    }
    return commit();
  }

  std::optional<Status> run_with_savepoints(std::vector<Job>& batch, std::vector<Status>& results) {
    if (Status begun = control(kBegin); !begun) {
      return begun;
    }
    Repo repo(*writer);
    for (size_t i = 0; i < batch.size(); ++i) {
      Status s = control(kSavepoint);
      if (s) {
        s = batch[i].fn(repo);
        if (s) {
          s = control(kRelease);
        } else {
          (void)control(kRollbackTo);
          (void)control(kRelease);
        }
      }
      results[i] = std::move(s);
    }
    return commit();
  }

  static int64_t micros(std::chrono::steady_clock::duration d) {
    return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  }

  Status commit() {
    const auto started = std::chrono::steady_clock::now();
    Status committed = control(kCommit);
    commit_spent += std::chrono::steady_clock::now() - started;
    if (!committed) {
      (void)writer->exec("ROLLBACK");
      Error e = committed.error();
      e.kind = ErrorKind::unavailable;
      e.code = "storage_unavailable";
      spdlog::error("database commit failed: {}", e.message);
      return e;
    }
    return {};
  }

  std::chrono::steady_clock::duration commit_spent{};  // in this batch's COMMIT(s)

  static inline const std::string kBegin = "BEGIN IMMEDIATE";
  static inline const std::string kSavepoint = "SAVEPOINT job";
  static inline const std::string kRelease = "RELEASE job";
  static inline const std::string kRollbackTo = "ROLLBACK TO job";
  static inline const std::string kCommit = "COMMIT";
};

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<Store>> Store::open(const std::string& path) {
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  // The writer's WAL writes go out as one write per commit (store/wal_vfs.hpp).
  auto writer = Database::open(path, /*read_only=*/false, /*gather_wal_writes=*/true);
  if (!writer) {
    return writer.error();
  }
  impl->writer = std::move(*writer);
  auto version = migrate(*impl->writer);
  if (!version) {
    return version.error();
  }
  // Each job runs in a savepoint, whose undo pages SQLite writes to a temporary file once they
  // pass 64 KiB: several page writes per event for nothing durable. The writer's statement
  // journals (one job's pages at a time) stay in memory. Readers keep the default, so their
  // large sorts may still spill to disk.
  if (auto s = impl->writer->exec("PRAGMA temp_store=MEMORY"); !s) {
    return s.error();
  }
  auto checkpointer = Database::open(path);
  if (!checkpointer) {
    return checkpointer.error();
  }
  impl->checkpointer = std::move(*checkpointer);
  sqlite3_wal_hook(impl->writer->raw(), &Impl::on_wal_commit, impl.get());
  std::unique_ptr<Store> store(new Store(std::move(impl)));
  store->impl_->thread = std::thread([s = store->impl_.get()] {
    pthread_setname_np(pthread_self(), "herald-writer");  // for top -H, perf and benchmarks
    s->run();
  });
  store->impl_->checkpoint_thread = std::thread([s = store->impl_.get()] {
    pthread_setname_np(pthread_self(), "herald-ckpt");
    s->run_checkpoints();
  });
  return store;
}

Store::~Store() {
  stop();
}

void Store::stop() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
  {
    std::lock_guard lock(impl_->checkpoint_mutex);
    impl_->checkpoint_stopping = true;
  }
  impl_->checkpoint_wake.notify_all();
  if (impl_->checkpoint_thread.joinable()) {
    impl_->checkpoint_thread.join();
  }
}

void Store::write(WriteFn fn, Done done, Mode mode) {
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) {
      done(make_error(ErrorKind::unavailable, "shutting_down", "herald is shutting down"));
      return;
    }
    impl_->queue.push_back({std::move(fn), std::move(done), mode});
  }
  impl_->wake.notify_one();
}

Status Store::write_sync(WriteFn fn) {
  std::promise<Status> promise;
  auto future = promise.get_future();
  write(std::move(fn), [&promise](Status s) { promise.set_value(std::move(s)); });
  return future.get();
}

void Store::write(std::vector<WriteFn> fns, DoneAll done) {
  if (fns.empty()) {
    done({});
    return;
  }
  // Either every write is queued (their statuses then arrive on the writer thread) or none
  // (all fail here): `left` is never counted down from two threads.
  struct Group {
    std::vector<Status> results;
    size_t left = 0;
    DoneAll done;
  };
  auto group = std::make_shared<Group>();
  group->results.resize(fns.size());
  group->left = fns.size();
  group->done = std::move(done);
  auto finish_one = [group](size_t i, Status s) {
    group->results[i] = std::move(s);
    if (--group->left == 0) {
      group->done(std::move(group->results));
    }
  };
  {
    std::lock_guard lock(impl_->mutex);
    if (!impl_->stopping) {
      for (size_t i = 0; i < fns.size(); ++i) {
        impl_->queue.push_back(
            {std::move(fns[i]), [finish_one, i](Status s) { finish_one(i, std::move(s)); }});
      }
      impl_->wake.notify_one();
      return;
    }
  }
  for (size_t i = 0; i < fns.size(); ++i) {
    finish_one(i, make_error(ErrorKind::unavailable, "shutting_down", "herald is shutting down"));
  }
}

std::vector<Status> Store::write_sync(std::vector<WriteFn> fns) {
  std::promise<std::vector<Status>> promise;
  auto future = promise.get_future();
  write(std::move(fns),
        [&promise](std::vector<Status> results) { promise.set_value(std::move(results)); });
  return future.get();
}

Result<std::unique_ptr<Database>> Store::acquire_reader() {
  {
    std::lock_guard lock(impl_->readers_mutex);
    if (!impl_->readers.empty()) {
      auto db = std::move(impl_->readers.back());
      impl_->readers.pop_back();
      return db;
    }
  }
  return Database::open(impl_->path);
}

void Store::release_reader(std::unique_ptr<Database> db) {
  std::lock_guard lock(impl_->readers_mutex);
  if (impl_->readers.size() < kReaderPool) {
    impl_->readers.push_back(std::move(db));
  }
}

const std::string& Store::path() const {
  return impl_->path;
}
int64_t Store::commits() const {
  return impl_->commits.load();
}
int64_t Store::committed_writes() const {
  return impl_->committed_writes.load();
}
double Store::write_seconds() const {
  return static_cast<double>(impl_->write_micros.load()) / 1e6;
}
double Store::commit_seconds() const {
  return static_cast<double>(impl_->commit_micros.load()) / 1e6;
}
int64_t Store::sqlite_memory() {
  return static_cast<int64_t>(sqlite3_memory_used());
}

}  // namespace herald::store
