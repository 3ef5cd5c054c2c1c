#include "daemon/audit/retention.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/core/crypto.hpp"
#include "tests/support/store_fixture.hpp"

namespace herald::audit {
namespace {

using namespace std::chrono_literals;
using store::Repo;

Timestamp at(int64_t hours) {
  return Timestamp{} + std::chrono::hours(480'000 + hours);
}

class RetentionTest : public herald::testing::StoreFixture {
 protected:
  // A message created at `created`, in `status`, with its content stored and audited as the
  // dispatcher does (message.rendered holds the hashes only).
  void add(const std::string& id, const std::string& client, Timestamp created,
           MessageStatus status) {
    ASSERT_TRUE(write([&](Repo& r) -> Status {
      Message m;
      m.id = id;
      m.event_id = "evt";
      m.client_id = client;
      m.incident_id = "INC-1";
      m.phase = Phase::containment;
      m.rule_id = "r";
      m.contact_id = "dana";
      m.channel = "email";
      m.status = status;
      m.created_at = created;
      m.send_at = created;
      m.planned_at = created;
      if (auto ins = r.insert_message(m); !ins) {
        return ins.error();
      }
      store::MessageContent c;
      c.address = "dana@acme.example";
      c.subject = "Subject of " + id;
      c.body = "Body of " + id;
      c.content_hash = sha256_hex(c.subject + c.body);
      if (auto s = r.set_content(id, c); !s) {
        return s;
      }
      nlohmann::json data{{"message", id}, {"body_sha256", sha256_hex(c.body)}};
      return r.audit("message.rendered", "dispatcher", client, id, data.dump(), created);
    }));
  }

  std::optional<store::MessageContent> content(const std::string& id) {
    auto c =
        store_->read<std::optional<store::MessageContent>>([&](Repo& r) { return r.content(id); });
    EXPECT_TRUE(c);
    return *c;
  }
};

TEST_F(RetentionTest, PrunesOldFinishedBodiesKeepsHashesAndTheChain) {
  add("old-delivered", "acme", at(0), MessageStatus::delivered);
  add("old-failed", "globex", at(1), MessageStatus::failed);
  add("old-retrying", "acme", at(1), MessageStatus::retrying);  // not finished: kept
  add("new-delivered", "acme", at(100), MessageStatus::delivered);

  auto pruned = prune_bodies(*store_, at(110), 24h, /*batch=*/1);  // batches of one
  ASSERT_TRUE(pruned) << pruned.error().message;
  EXPECT_EQ(*pruned, 2);

  for (const char* id : {"old-delivered", "old-failed"}) {
    auto c = content(id);
    ASSERT_TRUE(c) << id;
    EXPECT_TRUE(c->pruned) << id;
    EXPECT_EQ(c->body, "") << id;
    EXPECT_EQ(c->subject, "") << id;
    EXPECT_EQ(c->content_hash, sha256_hex(std::string("Subject of ") + id + "Body of " + id));
    EXPECT_EQ(c->address, "dana@acme.example");
  }
  for (const char* id : {"old-retrying", "new-delivered"}) {
    auto c = content(id);
    ASSERT_TRUE(c) << id;
    EXPECT_FALSE(c->pruned) << id;
    EXPECT_EQ(c->body, std::string("Body of ") + id);
  }

  // The pruning is recorded, per client, and the chain still verifies.
  store::AuditFilter f;
  f.kind = "bodies.pruned";
  f.limit = 10;
  auto records =
      store_->read<std::vector<store::AuditRecord>>([&](Repo& r) { return r.audit_records(f); });
  ASSERT_TRUE(records);
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].client_id, "acme");
  EXPECT_EQ((*records)[0].actor, "retention");
  auto data = nlohmann::json::parse((*records)[0].data);
  EXPECT_EQ(data["messages"], nlohmann::json::array({"old-delivered"}));
  EXPECT_EQ(data["retain"], "1d");
  EXPECT_EQ((*records)[1].client_id, "globex");
  auto v = store_->read<store::AuditVerification>([](Repo& r) { return r.verify_audit(); });
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->ok) << v->reason;
  EXPECT_EQ(v->records, 6);

  // A second pass finds nothing more and records nothing.
  auto again = prune_bodies(*store_, at(110), 24h);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0);
  v = store_->read<store::AuditVerification>([](Repo& r) { return r.verify_audit(); });
  EXPECT_EQ(v->records, 6);
}

TEST_F(RetentionTest, PrunerRunsAtStartAndStops) {
  add("old", "acme", at(0), MessageStatus::delivered);
  ManualClock clock(at(1000));
  Pruner pruner(*store_, clock, 24h, 1h);
  pruner.start();
  for (int i = 0; i < 500 && !content("old")->pruned; ++i) {
    std::this_thread::sleep_for(10ms);  // the first pass runs at start, on its own thread
  }
  pruner.stop();
  EXPECT_TRUE(content("old")->pruned);
  pruner.stop();  // idempotent
}

}  // namespace
}  // namespace herald::audit
