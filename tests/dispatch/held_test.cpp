// What the dispatcher's limits rely on in the store: a held-back message goes back exactly as
// it was (attempt not counted), and a 410 turns its endpoint off once.
#include <gtest/gtest.h>

#include "daemon/store/store.hpp"
#include "tests/support/store_fixture.hpp"

namespace herald::store {
namespace {

Timestamp at(int64_t seconds) {
  return Timestamp{Millis{seconds * 1000}};
}

class HeldTest : public herald::testing::StoreFixture {
 protected:
  std::vector<Message> claim(int64_t when) {
    std::vector<Message> claimed;
    EXPECT_TRUE(write([&](Repo& r) -> Status {
      auto c = r.claim_due(at(when), 10);
      if (!c) {
        return c.error();
      }
      claimed = *c;
      return {};
    }));
    return claimed;
  }

  Message message(const std::string& id) {
    auto m = store_->read<std::optional<Message>>([&](Repo& r) { return r.message(id); });
    EXPECT_TRUE(m && m->has_value());
    return m && m->has_value() ? **m : Message{};
  }
};

TEST_F(HeldTest, DeferredClaimRestoresStatusAndAttempts) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    Message m;
    m.id = "m1";
    m.event_id = "evt";
    m.client_id = "acme";
    m.incident_id = "INC-1";
    m.phase = Phase::containment;
    m.rule_id = "r";
    m.endpoint_id = "siem";
    m.channel = "webhook";
    m.created_at = at(10);
    m.send_at = at(10);
    auto ins = r.insert_message(m);
    return ins ? Status{} : Status(ins.error());
  }));
  // Never tried: back to scheduled, zero attempts, no first attempt (the retry horizon has
  // not started).
  auto first = claim(10);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].first_attempt_at, at(10));
  ASSERT_TRUE(write([](Repo& r) { return r.defer_claimed("m1", at(40)); }));
  Message m = message("m1");
  EXPECT_EQ(m.status, MessageStatus::scheduled);
  EXPECT_EQ(m.attempts, 0);
  EXPECT_EQ(m.send_at, at(40));
  EXPECT_FALSE(m.first_attempt_at.has_value());
  EXPECT_TRUE(claim(39).empty());

  // Tried once and retrying: back to retrying with one attempt; the first attempt's time
  // stays.
  first = claim(40);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].first_attempt_at, at(40));
  ASSERT_TRUE(write([](Repo& r) {
    return r.finish_attempt("m1", MessageStatus::retrying, at(50), std::nullopt, "503");
  }));
  auto again = claim(50);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].attempts, 2);
  ASSERT_TRUE(write([](Repo& r) { return r.defer_claimed("m1", at(80)); }));
  m = message("m1");
  EXPECT_EQ(m.status, MessageStatus::retrying);
  EXPECT_EQ(m.attempts, 1);
  EXPECT_EQ(m.send_at, at(80));
  EXPECT_EQ(m.first_attempt_at, at(40));

  // Only a claimed message is put back: a finished one stays finished.
  ASSERT_EQ(claim(80).size(), 1u);
  ASSERT_TRUE(write([](Repo& r) {
    return r.finish_attempt("m1", MessageStatus::delivered, at(80), at(81), "");
  }));
  ASSERT_TRUE(write([](Repo& r) { return r.defer_claimed("m1", at(99)); }));
  EXPECT_EQ(message("m1").status, MessageStatus::delivered);
}

TEST_F(HeldTest, EndpointEnabledChangesOnlyOnce) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    Client c;
    c.id = "acme";
    c.name = "Acme Corp";
    if (auto put = r.put_client(c, at(1)); !put) {
      return put.error();
    }
    Endpoint e;
    e.client_id = "acme";
    e.id = "siem";
    e.type = EndpointType::webhook;
    e.url = "http://127.0.0.1:9/hooks";
    e.secrets = {"whsec_AAAA"};
    auto put = r.put_endpoint(e, at(1));
    if (!put) {
      return put.error();
    }
    auto off = r.set_endpoint_enabled("acme", "siem", false, at(2));
    EXPECT_TRUE(off && *off);
    auto again = r.set_endpoint_enabled("acme", "siem", false, at(3));
    EXPECT_TRUE(again && !*again);  // already off: no second audit record
    auto missing = r.set_endpoint_enabled("acme", "nope", false, at(3));
    EXPECT_TRUE(missing && !*missing);
    return {};
  }));
  auto e =
      store_->read<std::optional<Endpoint>>([](Repo& r) { return r.endpoint("acme", "siem"); });
  ASSERT_TRUE(e && e->has_value());
  EXPECT_FALSE((*e)->enabled);
  EXPECT_EQ((*e)->url, "http://127.0.0.1:9/hooks");
  EXPECT_EQ((*e)->secrets.size(), 1u);
}

}  // namespace
}  // namespace herald::store
