#include "daemon/store/store.hpp"
#include "tests/support/store_fixture.hpp"

#include <gtest/gtest.h>

namespace herald::store {
namespace {

Timestamp at(int64_t seconds) {
  return Timestamp{Millis{seconds * 1000}};
}

class TokensRepoTest : public herald::testing::StoreFixture {
 protected:
  Result<bool> insert(const ApiToken& t) {
    Result<bool> out = false;
    Status st = write([&](Repo& r) -> Status {
      out = r.insert_api_token(t);
      return out ? Status{} : Status{out.error()};
    });
    EXPECT_TRUE(st);
    return out;
  }
  Result<bool> remove(const std::string& name) {
    Result<bool> out = false;
    Status st = write([&](Repo& r) -> Status {
      out = r.delete_api_token(name);
      return out ? Status{} : Status{out.error()};
    });
    EXPECT_TRUE(st);
    return out;
  }
  std::vector<ApiToken> all() {
    auto rows = store_->read<std::vector<ApiToken>>([](Repo& r) { return r.api_tokens(); });
    EXPECT_TRUE(rows);
    return rows ? *rows : std::vector<ApiToken>{};
  }
};

TEST_F(TokensRepoTest, InsertListDelete) {
  ApiToken siem{"siem", std::string(64, 'a'), {"ingest"}, at(10), "ops", std::nullopt};
  ApiToken auditor{"auditor", std::string(64, 'b'), {"audit", "admin"}, at(20), "ops", at(99)};
  auto first = insert(siem);
  ASSERT_TRUE(first);
  EXPECT_TRUE(*first);
  ASSERT_TRUE(insert(auditor));

  // Same name again: refused, the first stays as it was.
  ApiToken again = siem;
  again.sha256 = std::string(64, 'c');
  auto dup = insert(again);
  ASSERT_TRUE(dup);
  EXPECT_FALSE(*dup);

  auto rows = all();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].name, "auditor");  // by name
  EXPECT_EQ(rows[0].scopes, (std::vector<std::string>{"audit", "admin"}));
  EXPECT_EQ(rows[0].expires_at, at(99));
  EXPECT_EQ(rows[0].created_by, "ops");
  EXPECT_EQ(rows[1].name, "siem");
  EXPECT_EQ(rows[1].sha256, std::string(64, 'a'));
  EXPECT_EQ(rows[1].created_at, at(10));
  EXPECT_FALSE(rows[1].expires_at);

  auto deleted = remove("siem");
  ASSERT_TRUE(deleted);
  EXPECT_TRUE(*deleted);
  auto missing = remove("siem");
  ASSERT_TRUE(missing);
  EXPECT_FALSE(*missing);
  ASSERT_EQ(all().size(), 1u);
}

}  // namespace
}  // namespace herald::store
