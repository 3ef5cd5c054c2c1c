// Golden tests: every shipped template rendered for a fixed context and compared with the
// checked-in text in tests/render/golden/, so that a change of wording is a visible diff.
// To accept a change: HERALD_UPDATE_GOLDEN=1 ./render_golden_test, then review `git diff`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "daemon/render/renderer.hpp"

namespace herald::render {
namespace {

const std::filesystem::path kGoldenDir =
    std::filesystem::path(HERALD_SOURCE_DIR) / "tests" / "render" / "golden";

bool updating() {
  const char* v = std::getenv("HERALD_UPDATE_GOLDEN");
  return v && std::string(v) == "1";
}

void check_golden(const std::string& file, const std::string& actual) {
  auto path = kGoldenDir / file;
  if (updating()) {
    std::filesystem::create_directories(kGoldenDir);
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in.good()) << path << " is missing: run with HERALD_UPDATE_GOLDEN=1";
  std::ostringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), actual)
      << file << " differs: if the change is intended, run with HERALD_UPDATE_GOLDEN=1";
}

// One case: a context variant, rendered on every channel.
struct Variant {
  std::string suffix;  // "" for the plain case
  bool drill = false;
  bool endpoint = false;  // a chat room: no contact, no link
  std::string locale;
};

TEST(GoldenTest, EveryPhaseAndChannel) {
  auto renderer = Renderer::load_shipped();
  ASSERT_TRUE(renderer.ok()) << renderer.error().message;
  std::vector<std::string> files;
  for (Phase phase : kAllPhases) {
    for (const Variant& v : {Variant{"", false, false, ""}, Variant{".drill", true, false, ""},
                             Variant{".de", false, false, "de"}}) {
      if (v.locale == "de" && phase != Phase::containment) {
        continue;
      }
      TemplateContext ctx = sample_context(phase, v.drill);
      ctx.locale = v.locale;
      std::string base = std::string(to_string(phase));
      auto email = renderer->render(ctx, "email");
      ASSERT_TRUE(email.ok()) << email.error().message;
      auto sms = renderer->render(ctx, "sms");
      ASSERT_TRUE(sms.ok()) << sms.error().message;
      TemplateContext room = ctx;
      room.contact_name.clear();
      room.contact_role.clear();
      room.ack_url.clear();
      auto chat = renderer->render(room, "chat", "slack");
      ASSERT_TRUE(chat.ok()) << chat.error().message;
      const std::pair<std::string, std::string> outputs[] = {
          {base + ".email.subject" + v.suffix + ".txt", email->subject + "\n"},
          {base + ".email.text" + v.suffix + ".txt", email->text},
          {base + ".email.html" + v.suffix + ".txt", email->html},
          {base + ".sms.text" + v.suffix + ".txt", sms->text + "\n"},
          {base + ".chat.text" + v.suffix + ".txt", chat->text + "\n"},
      };
      for (const auto& [file, text] : outputs) {
        check_golden(file, text);
        files.push_back(file);
      }
    }
  }
  // The any.* templates serve phases a client's own templates do not cover: rendered directly.
  for (const auto& name : renderer->shipped_names()) {
    auto parsed = parse_template_name(name);
    ASSERT_TRUE(parsed.ok()) << name;
    if (parsed->phase != "any") {
      continue;
    }
    auto text = render_string(*renderer->shipped_source(name), parsed->channel_part,
                              context_json(sample_context()));
    ASSERT_TRUE(text.ok()) << name << ": " << text.error().message;
    std::string file = name + ".txt";
    check_golden(file, text->empty() || text->back() != '\n' ? *text + "\n" : *text);
    files.push_back(file);
  }
  // No stale fixtures: every file in the directory is one this test writes.
  for (const auto& entry : std::filesystem::directory_iterator(kGoldenDir)) {
    auto name = entry.path().filename().string();
    EXPECT_NE(std::find(files.begin(), files.end(), name), files.end())
        << name << " is not rendered by any case: delete it";
  }
}

}  // namespace
}  // namespace herald::render
