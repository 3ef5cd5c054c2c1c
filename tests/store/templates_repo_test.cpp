// Stored templates: versions per client and name, deletions as versions, and what rendering
// reads (the latest live version of the client's and everyone's).
#include <gtest/gtest.h>

#include "daemon/store/store.hpp"
#include "tests/support/store_fixture.hpp"

namespace herald::store {
namespace {

Timestamp at(int64_t seconds) {
  return Timestamp{Millis{seconds * 1000}};
}

class TemplatesRepoTest : public herald::testing::StoreFixture {
 protected:
  int64_t put(std::string client, std::string name, std::optional<std::string> body, int64_t when) {
    int64_t version = 0;
    EXPECT_TRUE(write([&](Repo& r) -> Status {
      auto v = r.put_template(client, name, body, "admin", at(when));
      if (!v) {
        return v.error();
      }
      version = *v;
      return {};
    }));
    return version;
  }

  std::vector<TemplateVersion> current(std::string client) {
    auto r = store_->read<std::vector<TemplateVersion>>(
        [&](Repo& repo) { return repo.current_templates(client); });
    EXPECT_TRUE(r);
    return r ? *r : std::vector<TemplateVersion>{};
  }
};

TEST_F(TemplatesRepoTest, VersionsCountPerClientAndName) {
  EXPECT_EQ(put("acme", "any.sms.text", "one", 1), 1);
  EXPECT_EQ(put("acme", "any.sms.text", "two", 2), 2);
  EXPECT_EQ(put("globex", "any.sms.text", "g", 3), 1);
  EXPECT_EQ(put("", "any.sms.text", "everyone", 4), 1);
  EXPECT_EQ(put("acme", "any.chat.text", "c", 5), 1);

  auto acme = current("acme");
  ASSERT_EQ(acme.size(), 3u);  // everyone's first ('' sorts first), then acme's by name
  EXPECT_EQ(acme[0].client_id, "");
  EXPECT_EQ(acme[1].name, "any.chat.text");
  EXPECT_EQ(acme[2].name, "any.sms.text");
  EXPECT_EQ(acme[2].version, 2);
  EXPECT_EQ(acme[2].body, "two");
  EXPECT_EQ(acme[2].actor, "admin");
  EXPECT_EQ(acme[2].at, at(2));
  EXPECT_EQ(current("*").size(), 4u);

  auto v1 = store_->read<std::optional<TemplateVersion>>(
      [](Repo& r) { return r.template_version("acme", "any.sms.text", 1); });
  ASSERT_TRUE(v1 && *v1);
  EXPECT_EQ((*v1)->body, "one");
  auto missing = store_->read<std::optional<TemplateVersion>>(
      [](Repo& r) { return r.template_version("acme", "any.sms.text", 9); });
  ASSERT_TRUE(missing);
  EXPECT_FALSE(missing->has_value());
}

TEST_F(TemplatesRepoTest, DeletionIsAVersionAndHidesTheTemplate) {
  put("acme", "any.sms.text", "one", 1);
  EXPECT_EQ(put("acme", "any.sms.text", std::nullopt, 2), 2);
  EXPECT_TRUE(current("acme").empty());
  auto latest = store_->read<std::optional<TemplateVersion>>(
      [](Repo& r) { return r.template_version("acme", "any.sms.text", 0); });
  ASSERT_TRUE(latest && *latest);
  EXPECT_FALSE((*latest)->body.has_value());
  // Stored again: version 3, live again.
  EXPECT_EQ(put("acme", "any.sms.text", "three", 3), 3);
  ASSERT_EQ(current("acme").size(), 1u);
  auto history = store_->read<std::vector<TemplateVersion>>(
      [](Repo& r) { return r.template_history("acme", "any.sms.text"); });
  ASSERT_TRUE(history);
  ASSERT_EQ(history->size(), 3u);
  EXPECT_EQ((*history)[0].body, "one");
  EXPECT_FALSE((*history)[1].body.has_value());
  EXPECT_EQ((*history)[2].body, "three");
}

TEST_F(TemplatesRepoTest, MessageContentKeepsTemplatesAndSegments) {
  ASSERT_TRUE(write([](Repo& r) -> Status {
    Message m;
    m.id = "msg-1";
    m.client_id = "acme";
    m.event_id = "evt-1";
    m.incident_id = "INC-1";
    m.channel = "sms";
    m.created_at = at(1);
    m.send_at = at(1);
    if (auto ok = r.insert_message(m); !ok) {
      return ok.error();
    }
    MessageContent c{"+15550001", "", "body", "hash", R"(["containment.sms.text@shipped"])", 2};
    return r.set_content("msg-1", c);
  }));
  auto content =
      store_->read<std::optional<MessageContent>>([](Repo& r) { return r.content("msg-1"); });
  ASSERT_TRUE(content && *content);
  EXPECT_EQ((*content)->templates, R"(["containment.sms.text@shipped"])");
  EXPECT_EQ((*content)->sms_segments, 2);
}

}  // namespace
}  // namespace herald::store
