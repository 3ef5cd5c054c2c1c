#include "daemon/render/renderer.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

namespace herald::render {
namespace {

TemplateContext sample() {
  TemplateContext ctx;
  ctx.client_id = "acme";
  ctx.client_name = "Acme Corp";
  ctx.incident_id = "INC-42";
  ctx.incident_title = "Ransomware on FS01";
  ctx.severity = Severity::critical;
  ctx.phase = Phase::containment;
  ctx.previous_phase = Phase::identification;
  ctx.event_id = "evt-7f3a";
  ctx.summary = "FS01 isolated from the network";
  ctx.occurred_at = *parse_rfc3339("2026-12-04T10:00:00Z");
  ctx.details_json = R"({"host":"FS01","count":3,"tags":["a","b"],"nested":{"ok":true}})";
  ctx.contact_name = "Dana Lee";
  ctx.contact_role = "legal";
  ctx.ack_url = "https://herald.example/ack/abc?t=1&u=2";
  ctx.update_number = 2;
  return ctx;
}

Renderer shipped(OverrideLookup overrides = {}) {
  auto renderer = Renderer::load_shipped(std::move(overrides));
  EXPECT_TRUE(renderer.ok()) << renderer.error().message;
  return std::move(renderer).value();
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

TEST(RendererTest, ShipsTheRequiredTemplates) {
  auto names = shipped().shipped_names();
  for (std::string name :
       {"any.email.subject", "any.email.text", "any.email.html", "any.sms.text", "any.chat.text"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  for (Phase phase : kAllPhases) {
    std::string name = std::string(to_string(phase)) + ".email.subject";
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const auto& name : names) {
    auto source = shipped().shipped_source(name);
    ASSERT_TRUE(source.has_value());
    EXPECT_TRUE(check_template(*source).ok()) << name;
  }
}

TEST(RendererTest, EveryPhaseAndChannelRenders) {
  Renderer renderer = shipped();
  for (bool drill : {false, true}) {
    for (Phase phase : kAllPhases) {
      for (bool person : {true, false}) {
        TemplateContext ctx = sample();
        ctx.phase = phase;
        ctx.drill = drill;
        if (!person) {
          ctx.contact_name.clear();
          ctx.contact_role.clear();
          ctx.ack_url.clear();
        }
        const std::string where = std::string(to_string(phase)) + (drill ? " drill" : "") +
                                  (person ? " person" : " endpoint");
        auto email = renderer.render(ctx, "email");
        ASSERT_TRUE(email.ok()) << where << ": " << email.error().message;
        EXPECT_TRUE(contains(email->subject, "Ransomware on FS01")) << where;
        EXPECT_TRUE(contains(email->subject, "[critical] Acme Corp: ")) << where;
        EXPECT_TRUE(contains(email->text, std::string(phase_label(phase)))) << where;
        EXPECT_TRUE(contains(email->text, "FS01 isolated from the network")) << where;
        EXPECT_TRUE(contains(email->html, "FS01 isolated from the network")) << where;
        EXPECT_TRUE(contains(email->html, "<table")) << where;
        EXPECT_EQ(contains(email->text, "https://herald.example/ack/abc?t=1&u=2"), person) << where;
        EXPECT_EQ(contains(email->html, "https://herald.example/ack/abc?t=1&amp;u=2"), person)
            << where;
        EXPECT_EQ(contains(email->text, "Hello Dana Lee,"), person) << where;
        EXPECT_FALSE(contains(email->text, "{{")) << where;
        EXPECT_FALSE(contains(email->text, "\n\n\n")) << where;
        EXPECT_FALSE(contains(email->html, "{{")) << where;
        EXPECT_EQ(contains(email->text, "final update"), phase == Phase::closed) << where;
        EXPECT_TRUE(email->payload_json.empty());

        auto sms = renderer.render(ctx, "sms");
        ASSERT_TRUE(sms.ok()) << where << ": " << sms.error().message;
        EXPECT_TRUE(contains(sms->text, "INC-42")) << where;
        EXPECT_LT(sms->text.size(), 300u) << where << ": " << sms->text;
        EXPECT_TRUE(sms->subject.empty() && sms->html.empty());

        for (std::string type : {"slack", "teams", "mattermost", "discord", "googlechat"}) {
          auto chat = renderer.render(ctx, "chat", type);
          ASSERT_TRUE(chat.ok()) << where << ": " << chat.error().message;
          EXPECT_TRUE(contains(chat->text, "Ransomware on FS01")) << where;
          EXPECT_TRUE(contains(chat->text, std::string(phase_label(phase)))) << where;
        }
        auto webhook = renderer.render(ctx, "webhook");
        ASSERT_TRUE(webhook.ok());
        EXPECT_EQ(webhook->payload_json, webhook_payload(ctx));
        EXPECT_TRUE(webhook->text.empty());
      }
    }
  }
}

TEST(RendererTest, PhaseSpecificSubjectAndPreviousPhase) {
  TemplateContext ctx = sample();
  auto email = shipped().render(ctx, "email");
  ASSERT_TRUE(email.ok());
  EXPECT_EQ(email->subject,
            "[critical] Acme Corp: Ransomware on FS01 — Containment: limiting the impact");
  EXPECT_TRUE(contains(email->text, "Containment (previously Identification)"));
  EXPECT_TRUE(contains(email->text, "update 2 on security incident INC-42"));
  EXPECT_TRUE(contains(email->text, "2026-12-04T10:00:00Z"));

  ctx.previous_phase.reset();
  email = shipped().render(ctx, "email");
  ASSERT_TRUE(email.ok());
  EXPECT_FALSE(contains(email->text, "previously"));
}

TEST(RendererTest, UnknownChannel) {
  auto result = shipped().render(sample(), "fax");
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, "invalid_channel");
}

TEST(RendererTest, HtmlEscapingInEmailHtmlOnly) {
  TemplateContext ctx = sample();
  ctx.incident_title = "<script>\"&'";
  ctx.summary = "a < b && c > d";
  auto email = shipped().render(ctx, "email");
  ASSERT_TRUE(email.ok());
  EXPECT_TRUE(contains(email->html, "&lt;script&gt;&quot;&amp;&#39;"));
  EXPECT_FALSE(contains(email->html, "<script>"));
  EXPECT_TRUE(contains(email->html, "a &lt; b &amp;&amp; c &gt; d"));
  EXPECT_TRUE(contains(email->text, "<script>\"&'"));
  EXPECT_TRUE(contains(email->text, "a < b && c > d"));
  EXPECT_TRUE(contains(email->subject, "<script>\"&'"));
  auto sms = shipped().render(ctx, "sms");
  EXPECT_TRUE(contains(sms->text, "<script>\"&'"));
}

TEST(RendererTest, ChatEscapingPerService) {
  TemplateContext ctx = sample();
  ctx.incident_title = "<!channel> & <b>\"x\"";
  for (std::string type : {"slack", "mattermost"}) {
    auto chat = shipped().render(ctx, "chat", type);
    ASSERT_TRUE(chat.ok());
    EXPECT_TRUE(contains(chat->text, "&lt;!channel&gt; &amp; &lt;b&gt;\"x\"")) << type;
  }
  for (std::string type : {"teams", "discord", "googlechat"}) {
    auto chat = shipped().render(ctx, "chat", type);
    ASSERT_TRUE(chat.ok());
    EXPECT_TRUE(contains(chat->text, "<!channel> & <b>\"x\"")) << type;
  }
}

TEST(RendererTest, SubjectHeaderInjectionCollapsed) {
  TemplateContext ctx = sample();
  ctx.incident_title = "Breach\r\nBcc: victim@example.com\n\nbody";
  auto email = shipped().render(ctx, "email");
  ASSERT_TRUE(email.ok());
  EXPECT_EQ(email->subject.find_first_of("\r\n"), std::string::npos);
  EXPECT_TRUE(contains(email->subject, "Breach Bcc: victim@example.com body"));

  auto subject = render_string("\n  {{t}}  \r\n", "email.subject", {{"t", "a\r\nb"}});
  ASSERT_TRUE(subject.ok());
  EXPECT_EQ(*subject, "a b");
}

TEST(RendererTest, DrillMarkedInEveryChannel) {
  TemplateContext ctx = sample();
  ctx.drill = true;
  Renderer renderer = shipped();
  for (Phase phase : kAllPhases) {
    ctx.phase = phase;
    auto email = renderer.render(ctx, "email");
    ASSERT_TRUE(email.ok());
    EXPECT_EQ(email->subject.rfind("[DRILL] ", 0), 0u) << email->subject;
    EXPECT_TRUE(contains(email->text, "DRILL")) << to_string(phase);
    EXPECT_TRUE(contains(email->html, "DRILL — this is an exercise")) << to_string(phase);
    auto sms = renderer.render(ctx, "sms");
    EXPECT_EQ(sms->text.rfind("DRILL: ", 0), 0u) << sms->text;
    auto chat = renderer.render(ctx, "chat", "slack");
    EXPECT_EQ(chat->text.rfind("DRILL: ", 0), 0u) << chat->text;
    auto webhook = renderer.render(ctx, "webhook");
    EXPECT_TRUE(contains(webhook->payload_json, "\"drill\":true"));
  }
  ctx.drill = false;
  auto email = renderer.render(ctx, "email");
  EXPECT_FALSE(contains(email->subject + email->text + email->html, "DRILL"));
  EXPECT_FALSE(contains(renderer.render(ctx, "sms")->text, "DRILL"));
  EXPECT_FALSE(contains(renderer.render(ctx, "chat")->text, "DRILL"));
}

TEST(RendererTest, LookupOrder) {
  std::map<std::string, std::string> store;
  OverrideLookup lookup = [&store](std::string_view client,
                                   std::string_view name) -> std::optional<std::string> {
    auto it = store.find(std::string(client) + "/" + std::string(name));
    if (it == store.end()) {
      return std::nullopt;
    }
    return it->second;
  };
  Renderer renderer = shipped(lookup);
  TemplateContext ctx = sample();

  // Shipped PHASE beats shipped any.
  EXPECT_EQ(renderer.render(ctx, "email")->subject,
            "[critical] Acme Corp: Ransomware on FS01 — Containment: limiting the impact");
  // Shipped any serves a phase without its own template.
  EXPECT_TRUE(contains(renderer.render(ctx, "sms")->text, "Ransomware"));

  store["acme/any.email.subject"] = "client any {{incident.id}}";
  EXPECT_EQ(renderer.render(ctx, "email")->subject, "client any INC-42");
  store["acme/containment.email.subject"] = "client phase {{phase.id}}";
  EXPECT_EQ(renderer.render(ctx, "email")->subject, "client phase containment");
  // Another phase of the same client falls back to the client's any.
  ctx.phase = Phase::recovery;
  EXPECT_EQ(renderer.render(ctx, "email")->subject, "client any INC-42");
  // Another client sees the shipped templates.
  ctx.client_id = "globex";
  EXPECT_EQ(renderer.render(ctx, "email")->subject,
            "[critical] Acme Corp: Ransomware on FS01 — Recovery: restoring services");

  // An override that does not compile is an error naming the template.
  ctx.client_id = "acme";
  store["acme/any.sms.text"] = "line one\n{{#drill}}never closed";
  auto broken = renderer.render(ctx, "sms");
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error().code, "invalid_template");
  EXPECT_TRUE(contains(broken.error().message, "any.sms.text")) << broken.error().message;
  EXPECT_TRUE(contains(broken.error().message, "line 2")) << broken.error().message;
}

// Shipped templates render with their partials inlined (kainjow would parse each partial
// again at every use); the output must be exactly what kainjow renders with the partials as
// partials. Stored copies of the shipped partials force that path: a stored partial disables
// inlining.
TEST(RendererTest, InlinedPartialsRenderAsPartialsDo) {
  Renderer renderer = shipped();
  TemplateSet copies;
  for (const auto& name : renderer.shipped_names()) {
    if (name.rfind("partial.", 0) == 0) {
      copies.push_back(StoredTemplate{"", name, *renderer.shipped_source(name), 1});
    }
  }
  ASSERT_FALSE(copies.empty());
  int compared = 0;
  for (Phase phase : {Phase::preparation, Phase::identification, Phase::containment,
                      Phase::eradication, Phase::recovery, Phase::lessons_learned, Phase::closed}) {
    for (bool drill : {false, true}) {
      for (bool ack : {false, true}) {
        TemplateContext ctx = sample();
        ctx.phase = phase;
        ctx.drill = drill;
        if (!ack) {
          ctx.ack_url.clear();
          ctx.contact_name.clear();
        }
        for (const char* channel : {"email", "sms", "chat"}) {
          auto inlined = renderer.render(ctx, channel);
          auto partials = renderer.render(ctx, channel, "", &copies);
          ASSERT_TRUE(inlined.ok()) << inlined.error().message;
          ASSERT_TRUE(partials.ok()) << partials.error().message;
          std::string where = std::string(to_string(phase)) + " " + channel;
          EXPECT_EQ(inlined->subject, partials->subject) << where;
          EXPECT_EQ(inlined->text, partials->text) << where;
          EXPECT_EQ(inlined->html, partials->html) << where;
          EXPECT_EQ(inlined->templates, partials->templates) << where;
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(compared, 7 * 2 * 2 * 3);
  // A stored partial still wins over the inlined shipped one.
  TemplateSet footer{{"acme", "partial.footer", "FOOTER OF ACME", 1}};
  auto email = renderer.render(sample(), "email", "", &footer);
  ASSERT_TRUE(email.ok()) << email.error().message;
  EXPECT_TRUE(contains(email->text, "FOOTER OF ACME"));
  EXPECT_TRUE(contains(email->html, "FOOTER OF ACME"));
}

// A fan-out renders many messages of one event with the context they share built once: the
// output is exactly what each message's own context gives, whoever it goes to, and a context
// that differs in more than the person is rendered on its own.
TEST(RendererTest, SharedContextRendersAsEachMessagesOwn) {
  Renderer renderer = shipped();
  TemplateSet stored{{"acme", "any.sms.text",
                      "{{contact.name}}|{{ack_url}}|{{#contact.role}}"
                      "role {{contact.role}}{{/contact.role}}|"
                      "{{incident.title}}|{{> footer}}",
                      1}};
  for (Phase phase : {Phase::identification, Phase::containment, Phase::closed}) {
    TemplateContext first = sample();
    first.phase = phase;
    SharedContext shared(first);
    for (int person = 0; person < 3; ++person) {
      TemplateContext ctx = first;
      ctx.contact_name = person == 0 ? "" : "Person <" + std::to_string(person) + ">";
      ctx.contact_role = person == 2 ? "legal" : "";
      ctx.ack_url = person == 0 ? "" : "https://herald.example/ack/" + std::to_string(person);
      ASSERT_TRUE(shared.matches(ctx));
      for (const char* channel : {"email", "sms", "chat", "webhook"}) {
        for (const TemplateSet* set :
             {static_cast<const TemplateSet*>(nullptr), static_cast<const TemplateSet*>(&stored)}) {
          auto alone = renderer.render(ctx, channel, "", set);
          auto with = renderer.render(ctx, channel, "", set, &shared);
          ASSERT_TRUE(alone.ok()) << alone.error().message;
          ASSERT_TRUE(with.ok()) << with.error().message;
          std::string where =
              std::string(to_string(phase)) + " " + channel + " person " + std::to_string(person);
          EXPECT_EQ(with->subject, alone->subject) << where;
          EXPECT_EQ(with->text, alone->text) << where;
          EXPECT_EQ(with->html, alone->html) << where;
          EXPECT_EQ(with->payload_json, alone->payload_json) << where;
          EXPECT_EQ(with->templates, alone->templates) << where;
        }
      }
    }
    // Anything else that differs: not shared, and still rendered right.
    TemplateContext other = first;
    other.incident_title = "Another incident";
    EXPECT_FALSE(shared.matches(other));
    auto sms = renderer.render(other, "sms", "", &stored, &shared);
    ASSERT_TRUE(sms.ok());
    EXPECT_TRUE(contains(sms->text, "Another incident")) << sms->text;
    other = first;
    other.update_number = 3;
    EXPECT_FALSE(shared.matches(other));
    other = first;
    other.details_json = R"({"host":"FS02"})";
    EXPECT_FALSE(shared.matches(other));
  }
}

TEST(RenderStringTest, MissingKeysRenderEmpty) {
  auto out = render_string("[{{nope}}][{{a.b.c}}][{{#nope}}x{{/nope}}]", "sms.text",
                           nlohmann::json::object());
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "[][][]");
}

TEST(RenderStringTest, EmptyStringsAndNullAreFalse) {
  nlohmann::json ctx = {{"ack_url", ""}, {"none", nullptr}, {"n", 42},           {"f", 1.5},
                        {"yes", true},   {"no", false},     {"list", {"a", "b"}}};
  auto out = render_string(
      "{{#ack_url}}link{{/ack_url}}{{^ack_url}}no link{{/ack_url}}|{{none}}|{{n}}|{{f}}|"
      "{{#yes}}Y{{/yes}}{{#no}}N{{/no}}|{{#list}}{{.}},{{/list}}",
      "sms.text", ctx);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "no link||42|1.5|Y|a,b,");
}

TEST(RenderStringTest, EscapingPerChannelPart) {
  nlohmann::json ctx = {{"v", "<script>\"&'"}};
  struct Case {
    std::string part;
    std::string expected;
  };
  for (const auto& c : std::vector<Case>{{"email.html", "&lt;script&gt;&quot;&amp;&#39;"},
                                         {"email.text", "<script>\"&'\n"},
                                         {"email.subject", "<script>\"&'"},
                                         {"sms.text", "<script>\"&'"},
                                         {"chat.text", "&lt;script&gt;\"&amp;'"}}) {
    auto out = render_string("{{v}}", c.part, ctx);
    ASSERT_TRUE(out.ok()) << c.part;
    EXPECT_EQ(*out, c.expected) << c.part;
  }
  auto raw = render_string("{{{v}}}", "email.html", ctx);
  EXPECT_EQ(*raw, "<script>\"&'");
  auto bad = render_string("{{v}}", "email.pdf", ctx);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "invalid_channel");
}

TEST(RenderStringTest, NonAscii) {
  nlohmann::json ctx = {{"name", "Müller & Søn — 東京 🚨"}};
  EXPECT_EQ(*render_string("Hallo {{name}}", "email.text", ctx), "Hallo Müller & Søn — 東京 🚨\n");
  EXPECT_EQ(*render_string("{{name}}", "email.html", ctx), "Müller &amp; Søn — 東京 🚨");

  TemplateContext tc = sample();
  tc.client_name = "Société Générale";
  tc.summary = "Серверы изолированы";
  auto email = shipped().render(tc, "email");
  ASSERT_TRUE(email.ok());
  EXPECT_TRUE(contains(email->subject, "Société Générale"));
  EXPECT_TRUE(contains(email->html, "Серверы изолированы"));
}

TEST(RenderStringTest, BrokenTemplatesNameTheLine) {
  struct Case {
    std::string source;
    std::string message;
  };
  for (const auto& c : std::vector<Case>{
           {"ok\nstill ok\n  {{#drill}}\nnever closed",
            "line 3, column 3: unclosed section \"drill\""},
           {"a\nb {{/x}}", "line 2, column 3: unopened section \"x\""},
           {"{{oops", "line 1, column 1: unclosed tag"},
           {"one\ntwo\nthree {{=<% %>=}} <% x", "line 3, column 19: unclosed tag"},
       }) {
    auto out = render_string(c.source, "email.text", nlohmann::json::object());
    ASSERT_FALSE(out.ok()) << c.source;
    EXPECT_EQ(out.error().kind, ErrorKind::unprocessable);
    EXPECT_EQ(out.error().code, "invalid_template");
    EXPECT_EQ(out.error().message, c.message);
    auto checked = check_template(c.source);
    ASSERT_FALSE(checked.ok());
    EXPECT_EQ(checked.error().message, c.message);
  }
  EXPECT_TRUE(check_template("{{#a}}{{b}}{{/a}}").ok());
}

TEST(RenderStringTest, PartialsOfDataDoNotPoisonLaterRenders) {
  // `{{>x}}` parses the value of x as a template; a broken one is a render error, reported.
  auto out = render_string("{{>x}}", "email.text", {{"x", "{{#open"}});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().code, "invalid_template");
}

TEST(ContextTest, Shape) {
  TemplateContext ctx = sample();
  nlohmann::json json = context_json(ctx);
  EXPECT_EQ(json["client"]["id"], "acme");
  EXPECT_EQ(json["client"]["name"], "Acme Corp");
  EXPECT_EQ(json["incident"]["severity"], "critical");
  EXPECT_EQ(json["phase"]["id"], "containment");
  EXPECT_EQ(json["phase"]["label"], "Containment");
  EXPECT_EQ(json["phase"]["number"], "3");
  EXPECT_EQ(json["phase"]["is_containment"], true);
  EXPECT_EQ(json["phase"]["is_recovery"], false);
  EXPECT_EQ(json["previous_phase"]["id"], "identification");
  EXPECT_EQ(json["previous_phase"]["label"], "Identification");
  EXPECT_EQ(json["event"]["summary"], "FS01 isolated from the network");
  EXPECT_EQ(json["event"]["occurred_at"], "2026-12-04T10:00:00Z");
  EXPECT_EQ(json["event"]["details"]["host"], "FS01");
  EXPECT_EQ(json["event"]["details"]["count"], "3");
  EXPECT_EQ(json["event"]["details"]["tags"], nlohmann::json({"a", "b"}));
  EXPECT_EQ(json["event"]["details"]["nested"]["ok"], "true");
  EXPECT_EQ(json["contact"]["name"], "Dana Lee");
  EXPECT_EQ(json["contact"]["role"], "legal");
  EXPECT_EQ(json["ack_url"], "https://herald.example/ack/abc?t=1&u=2");
  EXPECT_EQ(json["update"]["number"], "2");
  EXPECT_EQ(json["drill"], false);

  ctx.previous_phase.reset();
  ctx.details_json = "not json";
  json = context_json(ctx);
  EXPECT_EQ(json["previous_phase"]["id"], "");
  EXPECT_EQ(json["event"]["details"], nlohmann::json::object());

  auto out = render_string(
      "{{event.details.host}}/{{event.details.count}}/"
      "{{event.details.nested.ok}}/{{update.number}}/{{phase.number}}",
      "sms.text", context_json(sample()));
  EXPECT_EQ(*out, "FS01/3/true/2/3");
}

TEST(WebhookPayloadTest, Shape) {
  TemplateContext ctx = sample();
  auto payload = nlohmann::json::parse(webhook_payload(ctx));
  EXPECT_EQ(payload, nlohmann::json::parse(R"({
    "type": "incident.phase_changed", "event_id": "evt-7f3a", "client": "acme",
    "incident": {"id": "INC-42", "title": "Ransomware on FS01", "severity": "critical"},
    "phase": "containment", "previous_phase": "identification",
    "occurred_at": "2026-12-04T10:00:00Z", "summary": "FS01 isolated from the network",
    "details": {"host": "FS01", "count": 3, "tags": ["a", "b"], "nested": {"ok": true}},
    "drill": false})"));
  EXPECT_EQ(webhook_payload(ctx).rfind(R"({"type":"incident.phase_changed",)", 0), 0u);

  ctx.previous_phase.reset();
  ctx.summary = std::string("bad \xff utf-8");
  ctx.details_json = "[1]";
  payload = nlohmann::json::parse(webhook_payload(ctx));
  EXPECT_TRUE(payload["previous_phase"].is_null());
  EXPECT_EQ(payload["details"], nlohmann::json::object());
  EXPECT_EQ(payload["summary"], "bad \xEF\xBF\xBD utf-8");
}

TEST(RendererTest, ConcurrentRenders) {
  std::map<std::string, std::string> store = {{"acme/any.chat.text", "{{client.name}} chat"}};
  Renderer renderer = shipped(
      [&store](std::string_view client, std::string_view name) -> std::optional<std::string> {
        auto it = store.find(std::string(client) + "/" + std::string(name));
        return it == store.end() ? std::nullopt : std::optional<std::string>(it->second);
      });
  const auto expected_email = renderer.render(sample(), "email").value();
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        TemplateContext ctx = sample();
        ctx.drill = (i + t) % 2 == 1;
        auto email = renderer.render(ctx, "email");
        auto chat = renderer.render(ctx, "chat", "slack");
        auto sms = renderer.render(ctx, "sms");
        if (!email.ok() || !chat.ok() || !sms.ok() || chat->text != "Acme Corp chat") {
          ++mismatches;
          continue;
        }
        if (!ctx.drill &&
            (email->subject != expected_email.subject || email->html != expected_email.html ||
             email->text != expected_email.text)) {
          ++mismatches;
        }
        if (ctx.drill != (email->subject.rfind("[DRILL] ", 0) == 0)) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace herald::render
