#include "daemon/store/store.hpp"
#include "tests/support/store_fixture.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <future>
#include <thread>

namespace herald::store {
namespace {

Timestamp at(int64_t seconds) {
  return Timestamp{Millis{seconds * 1000}};
}

class StoreTest : public herald::testing::StoreFixture {};

TEST_F(StoreTest, MigratesToLatestVersionInWalMode) {
  auto db = Database::open(store_->path());
  ASSERT_TRUE(db);
  EXPECT_EQ((*db)->user_version(), latest_schema_version());
  auto mode = (*db)->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode);
  ASSERT_TRUE(*(*mode)->step());
  EXPECT_EQ((*mode)->text(0), "wal");
  // Migrating again is a no-op.
  auto again = migrate(**db);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, latest_schema_version());
}

TEST_F(StoreTest, ClientsContactsRoundTrip) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    auto created = r.put_client(Client{"acme", "Acme Corp", "Europe/Berlin", "de"}, at(1));
    if (!created) {
      return created.error();
    }
    EXPECT_TRUE(*created);
    Contact c;
    c.client_id = "acme";
    c.id = "dana";
    c.name = "Dana Lee";
    c.roles = {"legal", "executive"};
    c.email = "dana@acme.example";
    c.quiet_hours = QuietHours{22 * 60, 7 * 60};
    c.channels = {"email", "sms"};
    return r.put_contact(c, at(2)).ok() ? Status{}
                                        : Status{make_error(ErrorKind::internal, "", "")};
  }));
  auto contact =
      store_->read<std::optional<Contact>>([](Repo& r) { return r.contact("acme", "dana"); });
  ASSERT_TRUE(contact);
  ASSERT_TRUE(contact->has_value());
  EXPECT_EQ((*contact)->roles, (std::vector<std::string>{"legal", "executive"}));
  ASSERT_TRUE((*contact)->quiet_hours);
  EXPECT_EQ((*contact)->quiet_hours->start_minute, 22 * 60);

  // A deleted client disappears, and its contacts with it.
  ASSERT_TRUE(write([](Repo& r) -> Status {
    auto deleted = r.delete_client("acme", at(3));
    EXPECT_TRUE(deleted && *deleted);
    return {};
  }));
  auto gone = store_->read<std::optional<Client>>([](Repo& r) { return r.client("acme"); });
  ASSERT_TRUE(gone);
  EXPECT_FALSE(gone->has_value());
}

TEST_F(StoreTest, FailedWriteLeavesOthersInTheBatchIntact) {
  std::atomic<int> done{0};
  Status first, second;
  store_->write([](Repo& r) { return r.set_meta("a", "1"); },
                [&](Status s) {
                  first = s;
                  ++done;
                });
  store_->write(
      [](Repo& r) -> Status {
        (void)r.set_meta("b", "2");
        return make_error(ErrorKind::unprocessable, "nope", "rejected");
      },
      [&](Status s) {
        second = s;
        ++done;
      });
  ASSERT_TRUE(write([](Repo&) { return Status{}; }));
  EXPECT_EQ(done.load(), 2);
  EXPECT_TRUE(first);
  EXPECT_FALSE(second);
  auto a = store_->read<std::optional<std::string>>([](Repo& r) { return r.meta("a"); });
  auto b = store_->read<std::optional<std::string>>([](Repo& r) { return r.meta("b"); });
  EXPECT_EQ(a->value_or(""), "1");
  EXPECT_FALSE(b->has_value());  // rolled back to its savepoint
}

// Holds the writer inside a write until released, so that the writes queued meanwhile form the
// next batch together.
class WriterGate {
 public:
  explicit WriterGate(Store& store) {
    store.write(
        [this](Repo&) {
          entered_.set_value();
          release_.get_future().wait();
          return Status{};
        },
        [](Status) {});
    entered_.get_future().wait();
  }
  void release() { release_.set_value(); }

 private:
  std::promise<void> entered_;
  std::promise<void> release_;
};

// Three rerunnable writes queued behind a gate so that they share one batch: a sets a = 1,
// `middle` is the write under test, c sets c = 3. Each write's runs and result are kept.
struct ThreeRerunnableWrites {
  std::atomic<int> runs_a{0}, runs_b{0}, runs_c{0};
  Status result_a, result_b, result_c;
  int64_t commits_before = 0;

  ThreeRerunnableWrites(Store& store, std::function<Status(Repo&)> middle) {
    std::atomic<int> done{0};
    std::promise<void> all_done;
    auto count = [&](Status& into) {
      return [&into, &done, &all_done](Status s) {
        into = s;
        if (++done == 3) {
          all_done.set_value();
        }
      };
    };
    WriterGate gate(store);
    store.write(
        [this](Repo& r) {
          ++runs_a;
          return r.set_meta("a", "1");
        },
        count(result_a), Store::Mode::rerunnable);
    store.write(
        [this, middle](Repo& r) {
          ++runs_b;
          return middle(r);
        },
        count(result_b), Store::Mode::rerunnable);
    store.write(
        [this](Repo& r) {
          ++runs_c;
          return r.set_meta("c", "3");
        },
        count(result_c), Store::Mode::rerunnable);
    commits_before = store.commits();
    gate.release();
    EXPECT_EQ(all_done.get_future().wait_for(std::chrono::seconds(30)), std::future_status::ready);
  }
};

TEST_F(StoreTest, RerunnableBatchRunsAgainWithSavepointsWhenOneFailsAfterWriting) {
  ThreeRerunnableWrites w(*store_, [](Repo& r) -> Status {
    (void)r.set_meta("b", "2");
    return make_error(ErrorKind::unprocessable, "nope", "rejected after writing");
  });
  EXPECT_TRUE(w.result_a);
  ASSERT_FALSE(w.result_b);
  EXPECT_EQ(w.result_b.error().code, "nope");
  EXPECT_TRUE(w.result_c);
  // The first run was rolled back when b failed having written; the second, with savepoints,
  // committed a and c without b.
  EXPECT_EQ(w.runs_a.load(), 2);
  EXPECT_EQ(w.runs_b.load(), 2);
  EXPECT_EQ(w.runs_c.load(), 1);
  auto meta = [&](const char* key) {
    return store_->read<std::optional<std::string>>([key](Repo& r) { return r.meta(key); })
        ->value_or("");
  };
  EXPECT_EQ(meta("a"), "1");
  EXPECT_EQ(meta("b"), "");
  EXPECT_EQ(meta("c"), "3");
  EXPECT_EQ(store_->commits() - w.commits_before, 2);  // the gate's and the batch's
}

TEST_F(StoreTest, RerunnableWriteThatFailsWithoutWritingCostsNoRerun) {
  ThreeRerunnableWrites w(*store_, [](Repo& r) -> Status {
    auto unknown = r.client("nobody");  // reads, then refuses: nothing to undo
    EXPECT_TRUE(unknown && !unknown->has_value());
    return make_error(ErrorKind::unprocessable, "unknown_client", "no such client");
  });
  EXPECT_TRUE(w.result_a);
  EXPECT_FALSE(w.result_b);
  EXPECT_TRUE(w.result_c);
  EXPECT_EQ(w.runs_a.load(), 1);
  EXPECT_EQ(w.runs_b.load(), 1);
  EXPECT_EQ(w.runs_c.load(), 1);
  auto c = store_->read<std::optional<std::string>>([](Repo& r) { return r.meta("c"); });
  EXPECT_EQ(c->value_or(""), "3");
}

// Past 4000 pages in the WAL the checkpointer thread copies them into the database file (the
// writer would do it itself only past 16000): the file grows while the WAL stays short.
TEST_F(StoreTest, CheckpointsRunInTheBackground) {
  const auto db_file = dir_ / "herald.db";
  const auto initial = std::filesystem::file_size(db_file);
  const std::string page(4000, 'x');
  constexpr int kWrites = 5000;  // a page each: past the checkpointer's threshold, not the writer's
  std::promise<Status> last;
  for (int i = 0; i < kWrites; ++i) {
    store_->write([&page, i](Repo& r) { return r.set_meta("k" + std::to_string(i), page); },
                  [&last, i](Status s) {
                    if (i == kWrites - 1) {
                      last.set_value(s);
                    }
                  });
  }
  ASSERT_TRUE(last.get_future().get());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::filesystem::file_size(db_file) < initial + 4000 * 4096 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(std::filesystem::file_size(db_file), initial + 4000 * 4096)
      << "the WAL was not checkpointed into the database file";
  EXPECT_LT(std::filesystem::file_size(dir_ / "herald.db-wal"), 16000u * 4120u);
}

// The writer's WAL writes are gathered (store/wal_vfs.hpp). Whatever it commits must read back
// the same through another connection and SQLite's own VFS: commits of many pages (past the
// 128 KiB a single write of SQLite's may carry), and a transaction too large for the page cache,
// whose pages SQLite spills to the WAL and reads back before it commits.
TEST_F(StoreTest, GatheredWalWritesReadBackThroughOtherConnections) {
  const std::string page(4000, 'p');
  constexpr int kSmall = 600;
  std::promise<void> all_done;
  std::atomic<int> left{kSmall};
  std::atomic<int> failed{0};
  for (int i = 0; i < kSmall; ++i) {
    store_->write([&page, i](Repo& r) { return r.set_meta("small-" + std::to_string(i), page); },
                  [&](Status s) {
                    failed += s ? 0 : 1;
                    if (--left == 0) {
                      all_done.set_value();
                    }
                  });
  }
  all_done.get_future().wait();
  EXPECT_EQ(failed.load(), 0);
  constexpr int kLarge = 6000;  // about 24 MB in one transaction
  ASSERT_TRUE(write([&page](Repo& r) -> Status {
    for (int i = 0; i < kLarge; ++i) {
      if (auto s = r.set_meta("large-" + std::to_string(i), page); !s) {
        return s;
      }
    }
    return {};
  }));
  auto other = Database::open(store_->path(), /*read_only=*/true);
  ASSERT_TRUE(other);
  auto count = (*other)->prepare(
      "SELECT count(*), sum(length(value)) FROM meta WHERE key LIKE 'small-%' OR key LIKE "
      "'large-%'");
  ASSERT_TRUE(count);
  ASSERT_TRUE(*(*count)->step());
  EXPECT_EQ((*count)->integer(0), kSmall + kLarge);
  EXPECT_EQ((*count)->integer(1), int64_t{kSmall + kLarge} * 4000);
  auto check = (*other)->prepare("PRAGMA integrity_check");
  ASSERT_TRUE(check);
  ASSERT_TRUE(*(*check)->step());
  EXPECT_EQ((*check)->text(0), "ok");
}

TEST_F(StoreTest, ConcurrentWritesShareCommits) {
  constexpr int kThreads = 8, kPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string key = "k" + std::to_string(t) + "-" + std::to_string(i);
        EXPECT_TRUE(write([key](Repo& r) { return r.set_meta(key, "v"); }));
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_EQ(store_->committed_writes(), kThreads * kPerThread);
  EXPECT_LE(store_->commits(), kThreads * kPerThread);
}

// Writes queued together share one commit; each keeps its own status, and one failing leaves
// the others written.
TEST_F(StoreTest, WritesQueuedTogetherShareOneCommit) {
  auto commits_before = store_->commits();
  std::vector<Store::WriteFn> fns;
  fns.push_back([](Repo& r) { return r.set_meta("a", "1"); });
  fns.push_back(
      [](Repo&) -> Status { return make_error(ErrorKind::conflict, "nope", "this write fails"); });
  fns.push_back([](Repo& r) { return r.set_meta("b", "2"); });
  auto results = store_->write_sync(std::move(fns));
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0]);
  ASSERT_FALSE(results[1]);
  EXPECT_EQ(results[1].error().code, "nope");
  EXPECT_TRUE(results[2]);
  EXPECT_EQ(store_->commits(), commits_before + 1);
  for (auto [key, value] : {std::pair{"a", "1"}, std::pair{"b", "2"}}) {
    auto v = store_->read<std::optional<std::string>>([&](Repo& r) { return r.meta(key); });
    ASSERT_TRUE(v && v->has_value()) << key;
    EXPECT_EQ(**v, value);
  }
  EXPECT_TRUE(store_->write_sync(std::vector<Store::WriteFn>{}).empty());
}

Message make_message(const std::string& id, Timestamp send_at) {
  Message m;
  m.id = id;
  m.event_id = "evt";
  m.client_id = "acme";
  m.incident_id = "INC-1";
  m.phase = Phase::containment;
  m.rule_id = "r";
  m.contact_id = "dana";
  m.channel = "email";
  m.created_at = send_at;
  m.send_at = send_at;
  return m;
}

TEST_F(StoreTest, ClaimsDueMessagesOnceAndRequeuesInterrupted) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    for (auto m :
         {make_message("m1", at(10)), make_message("m2", at(20)), make_message("m3", at(30))}) {
      auto ins = r.insert_message(m);
      if (!ins) {
        return ins.error();
      }
    }
    auto dup = r.insert_message(make_message("m1", at(10)));
    EXPECT_TRUE(dup && !*dup);  // same id: never a second message
    return {};
  }));
  std::vector<Message> claimed;
  ASSERT_TRUE(write([&](Repo& r) -> Status {
    auto c = r.claim_due(at(25), 10);
    if (!c) {
      return c.error();
    }
    claimed = *c;
    return {};
  }));
  ASSERT_EQ(claimed.size(), 2u);
  EXPECT_EQ(claimed[0].id, "m1");
  EXPECT_EQ(claimed[0].attempts, 1);
  EXPECT_EQ(claimed[0].status, MessageStatus::sending);
  ASSERT_TRUE(write([&](Repo& r) -> Status {
    auto again = r.claim_due(at(25), 10);
    EXPECT_TRUE(again && again->empty());
    auto n = r.requeue_interrupted(at(26));
    EXPECT_TRUE(n && *n == 2);
    return {};
  }));
  auto attempts = store_->read<std::vector<Attempt>>([](Repo& r) { return r.attempts("m1"); });
  ASSERT_TRUE(attempts);
  ASSERT_EQ(attempts->size(), 1u);
  EXPECT_EQ((*attempts)[0].outcome, AttemptOutcome::retryable);
  auto m1 = store_->read<std::optional<Message>>([](Repo& r) { return r.message("m1"); });
  EXPECT_EQ((*m1)->status, MessageStatus::retrying);
}

// The dispatcher reads due messages ahead of claiming them, in due order (send_at, seq), a
// chunk at a time from where the last chunk ended, even inside a group sharing one send_at (a
// fan-out's); claim_ids claims read messages only if they are still due.
TEST_F(StoreTest, DueAfterReadsInDueOrderAndClaimOneOnlyWhatIsStillDue) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    // m0..m5 due at 10 s (inserted in that order), m6 at 20 s, m7 at 40 s (not due at 30 s).
    for (int i = 0; i < 8; ++i) {
      auto m = make_message("m" + std::to_string(i), at(i < 6 ? 10 : i == 6 ? 20 : 40));
      m.channel = i % 2 ? "sms" : "email";
      if (auto ins = r.insert_message(m); !ins) {
        return ins.error();
      }
    }
    return {};
  }));
  std::vector<std::string> order;
  std::vector<std::string> channels;
  std::optional<DuePosition> after;
  int chunks = 0;
  while (true) {
    auto chunk = store_->read<std::vector<DueCandidate>>(
        [&](Repo& r) { return r.due_after(at(30), after, 4); });
    ASSERT_TRUE(chunk) << chunk.error().message;
    if (chunk->empty()) {
      break;
    }
    ++chunks;
    for (const auto& c : *chunk) {
      order.push_back(c.id);
      channels.push_back(c.channel);
      EXPECT_EQ(c.client_id, "acme");
      EXPECT_EQ(c.contact_id, "dana");
    }
    after = DuePosition{chunk->back().send_at, chunk->back().seq};
  }
  EXPECT_EQ(chunks, 2);
  EXPECT_EQ(order, (std::vector<std::string>{"m0", "m1", "m2", "m3", "m4", "m5", "m6"}));
  EXPECT_EQ(channels[1], "sms");

  ASSERT_TRUE(write([](Repo& r) -> Status {
    // m7 is not due yet, "nope" does not exist: only m3 and m1 are claimed, in the order asked.
    auto claimed = r.claim_ids({"m3", "m7", "nope", "m1"}, at(30));
    EXPECT_TRUE(claimed);
    if (claimed) {
      std::vector<std::string> ids;
      for (const auto& m : *claimed) {
        ids.push_back(m.id);
        EXPECT_EQ(m.status, MessageStatus::sending);
        EXPECT_EQ(m.attempts, 1);
        EXPECT_EQ(m.first_attempt_at, at(30));
      }
      EXPECT_EQ(ids, (std::vector<std::string>{"m3", "m1"}));
    }
    auto again = r.claim_ids({"m1"}, at(30));  // claimed already
    EXPECT_TRUE(again && again->empty());
    return {};
  }));
  // A claimed message is no longer due: the next read from the start skips it.
  auto rest = store_->read<std::vector<DueCandidate>>(
      [&](Repo& r) { return r.due_after(at(30), std::nullopt, 100); });
  ASSERT_TRUE(rest);
  ASSERT_EQ(rest->size(), 5u);
  EXPECT_EQ((*rest)[0].id, "m0");
  EXPECT_EQ((*rest)[1].id, "m2");
  EXPECT_EQ((*rest)[2].id, "m4");
}

TEST_F(StoreTest, MessagePagesWithFiltersAndCursor) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    for (int i = 0; i < 5; ++i) {
      auto m = make_message("m" + std::to_string(i), at(i));
      m.channel = i % 2 ? "sms" : "email";
      (void)r.insert_message(m);
    }
    return {};
  }));
  MessageFilter f;
  f.channel = "email";
  f.limit = 2;
  auto page = store_->read<MessagePage>([&](Repo& r) { return r.messages(f); });
  ASSERT_TRUE(page);
  ASSERT_EQ(page->items.size(), 2u);
  ASSERT_TRUE(page->next_seq);
  f.after_seq = *page->next_seq;
  auto rest = store_->read<MessagePage>([&](Repo& r) { return r.messages(f); });
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].id, "m4");
  EXPECT_FALSE(rest->next_seq);
}

TEST_F(StoreTest, AuditChainDetectsEdits) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    for (int i = 0; i < 3; ++i) {
      if (auto s = r.audit("test", "ops", "acme", "s", "{\"i\":" + std::to_string(i) + "}", at(i));
          !s) {
        return s;
      }
    }
    return {};
  }));
  auto ok = store_->read<AuditVerification>([](Repo& r) { return r.verify_audit(); });
  ASSERT_TRUE(ok);
  EXPECT_TRUE(ok->ok);
  EXPECT_EQ(ok->records, 3);

  // The triggers refuse edits...
  auto db = Database::open(store_->path());
  ASSERT_TRUE(db);
  EXPECT_FALSE((*db)->exec("UPDATE audit SET data = '{}' WHERE seq = 2"));
  EXPECT_FALSE((*db)->exec("DELETE FROM audit WHERE seq = 2"));
  // ...and an edit that gets around them is detected.
  ASSERT_TRUE((*db)->exec("DROP TRIGGER audit_no_update"));
  ASSERT_TRUE((*db)->exec("UPDATE audit SET data = '{\"i\":9}' WHERE seq = 2"));
  auto bad = store_->read<AuditVerification>([](Repo& r) { return r.verify_audit(); });
  ASSERT_TRUE(bad);
  EXPECT_FALSE(bad->ok);
  EXPECT_EQ(bad->first_bad, 2);
}

}  // namespace
}  // namespace herald::store
