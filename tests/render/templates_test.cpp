// Stored templates (lookup with partials and locales), compile-time warnings, SMS length and
// fitting, and the mustache edge cases a template author meets.
#include <gtest/gtest.h>

#include "daemon/render/renderer.hpp"

namespace herald::render {
namespace {

Renderer shipped() {
  auto renderer = Renderer::load_shipped();
  EXPECT_TRUE(renderer.ok()) << renderer.error().message;
  return std::move(renderer).value();
}

bool contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// ---- names ---------------------------------------------------------------------------------

TEST(TemplateNameTest, Table) {
  struct Case {
    std::string name;
    bool ok;
    std::string phase, channel_part, partial, locale;
  };
  const Case cases[] = {
      {"containment.email.subject", true, "containment", "email.subject", "", ""},
      {"any.sms.text", true, "any", "sms.text", "", ""},
      {"containment.email.subject.de", true, "containment", "email.subject", "", "de"},
      {"closed.chat.text.de-AT", true, "closed", "chat.text", "", "de-AT"},
      {"partial.footer", true, "", "", "footer", ""},
      {"partial.signature.fr", true, "", "", "signature", "fr"},
      {"containment.email", false, "", "", "", ""},
      {"containment.email.body", false, "", "", "", ""},
      {"nonsense.email.text", false, "", "", "", ""},
      {"webhook.payload", false, "", "", "", ""},
      {"any.sms.text.DE", false, "", "", "", ""},
      {"any.sms.text.de.x", false, "", "", "", ""},
      {"partial.Footer", false, "", "", "", ""},
      {"partial.client", false, "", "", "", ""},  // would shadow the context's client
      {"partial", false, "", "", "", ""},
      {"", false, "", "", "", ""},
  };
  for (const auto& c : cases) {
    auto parsed = parse_template_name(c.name);
    ASSERT_EQ(parsed.ok(), c.ok) << c.name;
    if (!c.ok) {
      EXPECT_EQ(parsed.error().code, "invalid_template_name");
      continue;
    }
    EXPECT_EQ(parsed->phase, c.phase) << c.name;
    EXPECT_EQ(parsed->channel_part, c.channel_part) << c.name;
    EXPECT_EQ(parsed->partial, c.partial) << c.name;
    EXPECT_EQ(parsed->locale, c.locale) << c.name;
  }
}

// ---- stored templates: lookup, versions, locales, partials ---------------------------------

TEST(StoredTemplatesTest, LookupOrderWithEveryClientsLevelAndVersions) {
  Renderer renderer = shipped();
  TemplateContext ctx = sample_context();
  TemplateSet set;
  auto email = renderer.render(ctx, "email", {}, &set);
  ASSERT_TRUE(email.ok());
  EXPECT_EQ(email->templates, (std::vector<std::string>{"containment.email.subject@shipped",
                                                        "containment.email.text@shipped",
                                                        "containment.email.html@shipped"}));

  set.push_back({"", "any.email.subject", "everyone {{incident.id}}", 2});
  EXPECT_EQ(renderer.render(ctx, "email", {}, &set)->subject, "everyone INC-42");
  set.push_back({"acme", "any.email.subject", "acme any", 1});
  EXPECT_EQ(renderer.render(ctx, "email", {}, &set)->subject, "acme any");
  set.push_back({"acme", "containment.email.subject", "acme phase", 7});
  email = renderer.render(ctx, "email", {}, &set);
  EXPECT_EQ(email->subject, "acme phase");
  EXPECT_EQ(email->templates[0], "containment.email.subject@acme:v7");
  // Another client sees everyone's, then the shipped.
  ctx.client_id = "globex";
  email = renderer.render(ctx, "email", {}, &set);
  EXPECT_EQ(email->subject, "everyone INC-42");
  EXPECT_EQ(email->templates[0], "any.email.subject@*:v2");
}

TEST(StoredTemplatesTest, LocaleVariantPreferredThenDefault) {
  Renderer renderer = shipped();
  TemplateContext ctx = sample_context();
  ctx.locale = "de-AT";
  // The shipped German containment subject.
  auto email = renderer.render(ctx, "email");
  EXPECT_TRUE(contains(email->subject, "Eindämmung")) << email->subject;
  EXPECT_EQ(email->templates[0], "containment.email.subject.de@shipped");
  // No German recovery subject: the default.
  ctx.phase = Phase::recovery;
  EXPECT_TRUE(contains(renderer.render(ctx, "email")->subject, "Recovery: restoring services"));

  TemplateSet set{{"acme", "any.sms.text.de-AT", "Servus {{incident.id}}", 1},
                  {"acme", "any.sms.text", "Hello {{incident.id}}", 1}};
  EXPECT_EQ(renderer.render(ctx, "sms", {}, &set)->text, "Servus INC-42");
  ctx.locale = "de";
  EXPECT_EQ(renderer.render(ctx, "sms", {}, &set)->text, "Hello INC-42");
  ctx.locale = "";
  EXPECT_EQ(renderer.render(ctx, "sms", {}, &set)->text, "Hello INC-42");
  ctx.locale = "not a locale!";
  EXPECT_EQ(renderer.render(ctx, "sms", {}, &set)->text, "Hello INC-42");
}

TEST(StoredTemplatesTest, ClientPartialReplacesTheShippedFooterEverywhere) {
  Renderer renderer = shipped();
  TemplateContext ctx = sample_context();
  auto before = renderer.render(ctx, "email");
  EXPECT_TRUE(contains(before->text, "— Your security incident response team"));
  TemplateSet set{{"acme", "partial.footer", "Acme SOC <soc@acme.example> for {{client.name}}", 1}};
  auto email = renderer.render(ctx, "email", {}, &set);
  ASSERT_TRUE(email.ok()) << email.error().message;
  EXPECT_TRUE(contains(email->text, "— Acme SOC <soc@acme.example> for Acme Corp"));
  // A partial's own text is template text: not escaped; its values are.
  EXPECT_TRUE(contains(email->html, "Acme SOC <soc@acme.example> for Acme Corp"));
  // Another client keeps the shipped footer.
  ctx.client_id = "globex";
  EXPECT_TRUE(contains(renderer.render(ctx, "email", {}, &set)->text,
                       "— Your security incident response team"));
}

TEST(StoredTemplatesTest, NewPartialAndPartialCycles) {
  Renderer renderer = shipped();
  TemplateContext ctx = sample_context();
  TemplateSet set{{"acme", "partial.sig", "-- {{client.name}}", 1},
                  {"acme", "any.sms.text", "Hi {{> sig}}", 1}};
  EXPECT_EQ(renderer.render(ctx, "sms", {}, &set)->text, "Hi -- Acme Corp");

  set[0].body = "loop {{> sig}}";
  auto cycle = renderer.render(ctx, "sms", {}, &set);
  ASSERT_FALSE(cycle.ok());
  EXPECT_EQ(cycle.error().code, "invalid_template");
  EXPECT_TRUE(contains(cycle.error().message, "includes itself")) << cycle.error().message;

  auto direct = render_string("{{> a}}", "sms.text", nlohmann::json::object(),
                              {{"a", "{{> b}}"}, {"b", "{{> a}}"}});
  ASSERT_FALSE(direct.ok());
  EXPECT_TRUE(contains(direct.error().message, "includes itself"));
}

// The cycle check must see every partial tag the engine sees; these hid it and recursed until
// the stack overflowed (fuzz/regressions/template).
TEST(StoredTemplatesTest, PartialCyclesTheEngineSeesWhateverTheSpelling) {
  const std::string spellings[] = {
      "{{=<% %>=}}<%> footer%>",            // after a delimiter change
      "{{= | | =}}|> footer|",              // delimiters set with spaces around them
      "{{ > footer }}",                     // whitespace before the kind
      "{{=<% %>=}}<%={{ }}=%>{{>footer}}",  // changed and changed back
      "{{{=<% %>=}}}<% >footer %>",         // a change inside triple braces
  };
  for (const auto& body : spellings) {
    auto r =
        render_string("{{> footer}}", "email.text", nlohmann::json::object(), {{"footer", body}});
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_TRUE(contains(r.error().message, "includes itself"))
        << body << ": " << r.error().message;
  }
  // Partial tags the engine does not see are no cycle: a comment, an unescaped variable.
  for (const std::string body : {"{{! > footer}}", "{{{> footer}}}", "{{&> footer}}"}) {
    EXPECT_TRUE(
        render_string("{{> footer}}", "email.text", nlohmann::json::object(), {{"footer", body}})
            .ok())
        << body;
  }
}

TEST(StoredTemplatesTest, SectionsNestAtMost32Deep) {
  auto nested = [](size_t depth) {
    std::string out;
    for (size_t i = 0; i < depth; ++i) {
      out += "{{#a}}";
    }
    out += "x";
    for (size_t i = 0; i < depth; ++i) {
      out += "{{/a}}";
    }
    return out;
  };
  EXPECT_TRUE(check_template(nested(32)).ok());
  auto deep = check_template(nested(33));
  ASSERT_FALSE(deep.ok());
  EXPECT_EQ(deep.error().code, "invalid_template");
  EXPECT_TRUE(contains(deep.error().message, "line 1, column 193: sections nest more than 32"))
      << deep.error().message;
  EXPECT_FALSE(render_string(nested(40), "email.text", nlohmann::json::object()).ok());
  TemplateSet set{{"acme", "any.sms.text", nested(40), 1}};
  auto r = shipped().render(sample_context(), "sms", {}, &set);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "nest more than 32")) << r.error().message;
}

TEST(StoredTemplatesTest, BrokenStoredTemplateIsAnErrorNamingIt) {
  Renderer renderer = shipped();
  TemplateSet set{{"acme", "containment.chat.text", "ok\n{{#drill}}", 3}};
  auto r = renderer.render(sample_context(), "chat", "slack", &set);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(contains(r.error().message, "containment.chat.text")) << r.error().message;
  EXPECT_TRUE(contains(r.error().message, "line 2")) << r.error().message;
}

// ---- warnings ------------------------------------------------------------------------------

TEST(TemplateWarningsTest, Table) {
  struct Case {
    std::string source;
    std::vector<std::string> warnings;
  };
  const Case cases[] = {
      {"{{incident.title}} {{client.name}} {{ack_url}} {{drill}} {{update.number}}", {}},
      {"{{incident.titel}}",
       {"line 1, column 1: unknown variable \"incident.titel\" (did you mean "
        "\"incident.title\"?)"}},
      {"a\n  {{{contact.nmae}}}",
       {"line 2, column 3: unknown variable \"contact.nmae\" (did you mean \"contact.name\"?)"}},
      {"{{#incident}}{{title}} {{client.id}}{{/incident}}", {}},
      {"{{#phase.is_closed}}x{{/phase.is_closed}}{{^previous_phase.id}}first{{/previous_phase.id}}",
       {}},
      {"{{event.details.anything.goes}}", {}},
      {"{{#event.details.hosts}}{{name}} {{.}}{{/event.details.hosts}}", {}},
      {"{{#bogus}}{{whatever}}{{/bogus}}", {"line 1, column 1: unknown variable \"bogus\""}},
      {"{{! {{incident.titel}} is a comment }}", {}},
      {"{{> footer}} {{> nope}}",
       {"line 1, column 14: unknown partial \"nope\" (store it as partial.nope)"}},
      // Tags are read as the engine reads them, custom delimiters included.
      {"{{=<% %>=}}<% anything %> <%={{ }}=%>{{client.name}}",
       {"line 1, column 12: unknown variable \"anything\""}},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(template_warnings(c.source), c.warnings) << c.source;
  }
  EXPECT_TRUE(template_warnings("{{> sig}}", {"sig"}).empty());
}

TEST(TemplateWarningsTest, ShippedTemplatesHaveNone) {
  Renderer renderer = shipped();
  for (const auto& name : renderer.shipped_names()) {
    EXPECT_EQ(template_warnings(*renderer.shipped_source(name)), std::vector<std::string>{})
        << name;
  }
}

// ---- SMS -----------------------------------------------------------------------------------

TEST(SmsLengthTest, Table) {
  struct Case {
    std::string text;
    bool gsm7;
    int units, segments;
  };
  const Case cases[] = {
      {"", true, 0, 0},
      {"hello", true, 5, 1},
      {std::string(160, 'a'), true, 160, 1},
      {std::string(161, 'a'), true, 161, 2},
      {std::string(306, 'a'), true, 306, 2},
      {std::string(307, 'a'), true, 307, 3},
      {"€", true, 2, 1},                            // extension: two septets
      {std::string(159, 'a') + "€", true, 161, 2},  // the escape pushes it over
      // The escape pair is not split across segments: 152 + 2 > 153.
      {std::string(152, 'a') + "[" + std::string(152, 'b'), true, 306, 3},
      {"Grüße àéù ÄÖÑÜ £$¥ @", true, 20, 1},  // all in the basic GSM table
      {"—", false, 1, 1},
      {"`", false, 1, 1},   // ASCII, but not in the GSM alphabet
      {"a~b", true, 4, 1},  // em dash: UCS-2
      {"ç" + std::string(69, 'a'), false, 70, 1},
      {std::string(69, 'a') + "ç" + "x", false, 71, 2},
      {std::string(134, 'a') + "ç", false, 135, 3},  // 67 + 67 + 1
      {"🚨", false, 2, 1},                            // a surrogate pair
      {std::string(66, 'a') + "ç🚨", false, 69, 1},
      {std::string(66, 'a') + "ç🚨" + "xx", false, 71, 2},
  };
  for (const auto& c : cases) {
    auto length = sms_length(c.text);
    std::string where = c.text.substr(0, 20) + "... (" + std::to_string(c.text.size()) + " bytes)";
    EXPECT_EQ(length.gsm7, c.gsm7) << where;
    EXPECT_EQ(length.units, c.units) << where;
    EXPECT_EQ(length.segments, c.segments) << where;
  }
}

size_t chars(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

TEST(FitSmsTest, ShortTextIsUntouched) {
  EXPECT_EQ(fit_sms("short https://x/ack", "https://x/ack"), "short https://x/ack");
  std::string exact(kMaxSmsChars, 'a');
  EXPECT_EQ(fit_sms(exact, ""), exact);
}

TEST(FitSmsTest, LongTextIsCutAtAWordWithTheLinkWhole) {
  std::string link = "https://herald.example.com/ack/msg-1?sig=abc";
  std::string words;
  while (chars(words) < 3000) {
    words += "lorem ipsum dolor ";
  }
  std::string text = "Summary: " + words + "\nPlease confirm: " + link;
  std::string out = fit_sms(text, link);
  EXPECT_LE(chars(out), kMaxSmsChars);
  EXPECT_GT(chars(out), kMaxSmsChars - 20);
  ASSERT_GE(out.size(), link.size());
  EXPECT_EQ(out.substr(out.size() - link.size()), link);
  auto cut = out.substr(0, out.size() - link.size() - 1);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
  // At a word boundary: the word before the ellipsis is whole.
  auto last_space = cut.rfind(' ');
  std::string last_word = cut.substr(last_space + 1, cut.size() - last_space - 4);
  EXPECT_TRUE(last_word == "lorem" || last_word == "ipsum" || last_word == "dolor") << last_word;
}

TEST(FitSmsTest, LinkInTheMiddleMovesToTheEnd) {
  std::string link = "https://h/ack/1";
  std::string text = "Confirm " + link + " then read: " + std::string(2000, 'x');
  std::string out = fit_sms(text, link, 100);
  EXPECT_LE(chars(out), 100u);
  EXPECT_EQ(out.substr(out.size() - link.size()), link);
  EXPECT_EQ(out.find(link), out.size() - link.size());  // once
}

TEST(FitSmsTest, NonAsciiIsCutAtCharacters) {
  std::string text;
  for (int i = 0; i < 1000; ++i) {
    text += "東京 ";
  }
  std::string out = fit_sms(text, "", 101);
  EXPECT_LE(chars(out), 101u);
  EXPECT_EQ(out.substr(out.size() - 3), "...");
  EXPECT_EQ(out.substr(out.size() - 9, 6), "東京");  // whole characters, whole words
}

TEST(FitSmsTest, RenderedSmsWithAHugeSummaryKeepsTheLink) {
  Renderer renderer = shipped();
  TemplateContext ctx = sample_context();
  ctx.summary = std::string(5000, 'y');
  for (int i = 0; i < 500; ++i) {
    ctx.summary += " word";
  }
  auto sms = renderer.render(ctx, "sms");
  ASSERT_TRUE(sms.ok());
  EXPECT_LE(chars(sms->text), kMaxSmsChars);
  EXPECT_EQ(sms->text.substr(sms->text.size() - ctx.ack_url.size()), ctx.ack_url);
  EXPECT_EQ(sms->sms_segments, sms_length(sms->text).segments);
  EXPECT_EQ(sms->sms_segments, 11);  // 1600 GSM-7 characters: ceil(1600 / 153)
}

// With a realistic summary and link: plain GSM-7, at most three segments.
TEST(FitSmsTest, ShippedSmsIsShortAndPlainGsm) {
  Renderer renderer = shipped();
  for (Phase phase : kAllPhases) {
    for (bool drill : {false, true}) {
      auto sms = renderer.render(sample_context(phase, drill), "sms");
      ASSERT_TRUE(sms.ok());
      EXPECT_TRUE(sms_length(sms->text).gsm7) << sms->text;
      EXPECT_LE(sms->sms_segments, 3) << sms->text;
    }
  }
}

// ---- mustache edge cases and escaping -------------------------------------------------------

TEST(MustacheEdgeCasesTest, Table) {
  nlohmann::json ctx = {{"name", "Dana"},      {"empty", ""},
                        {"no", false},         {"yes", true},
                        {"none", nullptr},     {"list", nlohmann::json::array()},
                        {"items", {"a", "b"}}, {"objs", {{{"n", "x"}}, {{"n", "y"}}}},
                        {"html", "<b>&</b>"},  {"nested", {{"deep", {{"value", "v"}}}}}};
  struct Case {
    std::string source, part, expected;
  };
  const Case cases[] = {
      {"[{{missing}}]", "sms.text", "[]"},
      {"[{{missing.deep.key}}]", "sms.text", "[]"},
      {"[{{#missing}}x{{/missing}}]", "sms.text", "[]"},
      {"[{{^missing}}x{{/missing}}]", "sms.text", "[x]"},
      {"[{{#no}}x{{/no}}{{^no}}y{{/no}}]", "sms.text", "[y]"},
      {"[{{#yes}}x{{/yes}}]", "sms.text", "[x]"},
      {"[{{#empty}}x{{/empty}}{{^empty}}e{{/empty}}]", "sms.text", "[e]"},
      {"[{{#none}}x{{/none}}{{^none}}n{{/none}}]", "sms.text", "[n]"},
      {"[{{#list}}x{{/list}}{{^list}}empty{{/list}}]", "sms.text", "[empty]"},
      {"[{{#items}}{{.}};{{/items}}]", "sms.text", "[a;b;]"},
      {"[{{#objs}}{{n}}{{/objs}}]", "sms.text", "[xy]"},
      {"[{{nested.deep.value}}]", "sms.text", "[v]"},
      {"{{html}}", "email.html", "&lt;b&gt;&amp;&lt;/b&gt;"},
      {"{{{html}}}", "email.html", "<b>&</b>"},
      {"{{& html}}", "email.html", "<b>&</b>"},
      {"{{html}}", "chat.text", "&lt;b&gt;&amp;&lt;/b&gt;"},
      {"{{{html}}}", "chat.text", "<b>&</b>"},
      {"{{html}}", "sms.text", "<b>&</b>"},
      {"{{html}}", "email.text", "<b>&</b>\n"},
      {"a{{! comment }}b", "sms.text", "ab"},
  };
  for (const auto& c : cases) {
    auto out = render_string(c.source, c.part, ctx);
    ASSERT_TRUE(out.ok()) << c.source << ": " << out.error().message;
    EXPECT_EQ(*out, c.expected) << c.source << " as " << c.part;
  }
}

TEST(EscapingTest, EveryHazardInEveryPart) {
  // Quotes, ampersands, angle brackets, a JSON breaker, CR/LF, a Slack mention, a mustache
  // look-alike, a NUL-free control character and non-ASCII.
  const std::string hazard =
      "<script>\"x\"&'y'</script> \\\"} \r\nBcc: a@b <!channel> {{drill}} \t ü東🚨";
  TemplateContext ctx = sample_context();
  ctx.incident_title = hazard;
  ctx.summary = hazard;
  Renderer renderer = shipped();
  auto email = renderer.render(ctx, "email");
  ASSERT_TRUE(email.ok());
  EXPECT_EQ(email->subject.find_first_of("\r\n"), std::string::npos) << email->subject;
  EXPECT_TRUE(contains(email->subject, "<script>\"x\"&'y'</script>"));
  EXPECT_TRUE(contains(email->subject, "{{drill}}"));  // values are never re-rendered
  EXPECT_TRUE(contains(email->html,
                       "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt; \\&quot;}"));
  EXPECT_FALSE(contains(email->html, "<script>"));
  EXPECT_TRUE(contains(email->html, "ü東🚨"));
  EXPECT_TRUE(contains(email->text, "<script>\"x\"&'y'</script>"));
  for (std::string type : {"slack", "mattermost"}) {
    auto chat = renderer.render(ctx, "chat", type);
    EXPECT_TRUE(contains(chat->text, "&lt;!channel&gt;")) << type;
    EXPECT_FALSE(contains(chat->text, "<script>")) << type;
  }
  for (std::string type : {"teams", "discord", "google_chat"}) {
    auto chat = renderer.render(ctx, "chat", type);
    EXPECT_TRUE(contains(chat->text, "<!channel>")) << type;
  }
  auto sms = renderer.render(ctx, "sms");
  EXPECT_TRUE(contains(sms->text, "<script>\"x\"&'y'</script>"));
  // The webhook body stays valid JSON carrying the value exactly.
  auto payload = nlohmann::json::parse(renderer.render(ctx, "webhook")->payload_json);
  EXPECT_EQ(payload["incident"]["title"], hazard);
}

TEST(EscapingTest, VeryLongValues) {
  TemplateContext ctx = sample_context();
  ctx.incident_title = std::string(100'000, 'T');
  ctx.summary = std::string(200'000, 'S');
  Renderer renderer = shipped();
  auto email = renderer.render(ctx, "email");
  ASSERT_TRUE(email.ok());
  EXPECT_TRUE(contains(email->subject, ctx.incident_title));
  EXPECT_TRUE(contains(email->html, ctx.summary));
  auto sms = renderer.render(ctx, "sms");
  EXPECT_LE(chars(sms->text), kMaxSmsChars);
  EXPECT_EQ(sms->text.substr(sms->text.size() - ctx.ack_url.size()), ctx.ack_url);
}

TEST(SampleContextTest, RendersEverywhereWithoutWarnings) {
  auto ctx = context_json(sample_context(Phase::recovery, true));
  EXPECT_EQ(ctx["phase"]["id"], "recovery");
  EXPECT_EQ(ctx["previous_phase"]["id"], "eradication");
  EXPECT_EQ(ctx["drill"], true);
  EXPECT_EQ(context_json(sample_context(Phase::preparation))["previous_phase"]["id"], "");
}

}  // namespace
}  // namespace herald::render
