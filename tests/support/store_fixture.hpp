// A gtest fixture with a fresh, migrated SQLite store in a temporary folder of its own, removed
// afterwards. Tests that need a real database derive from it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "daemon/store/store.hpp"

namespace herald::testing {

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("herald-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name() + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    auto s = store::Store::open((dir_ / "herald.db").string());
    ASSERT_TRUE(s) << s.error().message;
    store_ = std::move(*s);
  }

  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  Status write(store::Store::WriteFn fn) { return store_->write_sync(std::move(fn)); }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace herald::testing
