#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "channels/email/email_channel.hpp"
#include "channels/email/mime.hpp"
#include "daemon/core/crypto.hpp"

namespace herald::channels {
namespace {

using email::quoted_printable;
using email::unstructured_header;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find("\r\n", start);
    if (end == std::string::npos) {
      out.push_back(text.substr(start));
      break;
    }
    out.push_back(text.substr(start, end - start));
    start = end + 2;
  }
  return out;
}

TEST(QuotedPrintable, Encodes) {
  struct Case {
    std::string input;
    std::string expected;
  };
  const Case cases[] = {
      {"hello", "hello"},
      {"a=b", "a=3Db"},
      {"trailing space ", "trailing space=20"},
      {"tab\t", "tab=09"},
      {"space before break \nnext", "space before break=20\r\nnext"},
      {"line1\nline2", "line1\r\nline2"},
      {"a\r\nb\rc\n", "a\r\nb\r\nc\r\n"},
      {"Café", "Caf=C3=A9"},
      {std::string(100, 'a'), std::string(75, 'a') + "=\r\n" + std::string(25, 'a')},
      {"x\x01y", "x=01y"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(quoted_printable(c.input), c.expected) << c.input;
  }
}

TEST(QuotedPrintable, NoLineOver76AndNoSplitEscape) {
  std::string text;
  for (int i = 0; i < 200; ++i) {
    text += "é=x ";
  }
  text += "\n" + std::string(2000, 'z');
  std::string qp = quoted_printable(text);
  for (const std::string& line : lines_of(qp)) {
    EXPECT_LE(line.size(), 76u) << line;
    // A soft break never falls inside an =XX escape.
    size_t eq = line.rfind('=');
    if (eq != std::string::npos && eq + 1 != line.size()) {
      EXPECT_LE(eq + 3, line.size()) << line;
    }
  }
}

TEST(UnstructuredHeader, PlainEncodedAndSafe) {
  EXPECT_EQ(unstructured_header("Subject", "Hello"), "Subject: Hello");
  // Header injection: CR and LF become spaces; nothing starts a new header.
  EXPECT_EQ(unstructured_header("Subject", "Hi\r\nBcc: evil@example.com"),
            "Subject: Hi  Bcc: evil@example.com");
  EXPECT_EQ(unstructured_header("Subject", "Café ☕"), "Subject: =?UTF-8?B?Q2Fmw6kg4piV?=");
  // Text that looks like an encoded-word is encoded, so it reads back literally.
  EXPECT_EQ(unstructured_header("Subject", "=?x?"), "Subject: =?UTF-8?B?PT94Pw==?=");
}

TEST(UnstructuredHeader, LongValuesFoldIntoWholeCharacterWords) {
  std::string subject;
  for (int i = 0; i < 40; ++i) {
    subject += "Zoë€😀 ";
  }
  std::string header = unstructured_header("Subject", subject);
  std::string decoded;
  for (std::string line : lines_of(header)) {
    EXPECT_LE(line.size(), 78u);
    size_t start = line.find("=?UTF-8?B?");
    ASSERT_NE(start, std::string::npos) << line;
    size_t end = line.find("?=", start + 10);
    std::string word;
    ASSERT_TRUE(base64_decode(line.substr(start + 10, end - start - 10), word));
    // Each word holds whole UTF-8 characters: it never starts with a continuation byte.
    ASSERT_FALSE(word.empty());
    EXPECT_NE(static_cast<unsigned char>(word[0]) & 0xC0, 0x80);
    decoded += word;
  }
  EXPECT_EQ(decoded, subject);
  // Long ASCII is encoded too rather than producing an overlong line.
  std::string long_ascii(120, 'a');
  EXPECT_NE(unstructured_header("Subject", long_ascii).find("=?UTF-8?B?"), std::string::npos);
}

TEST(DisplayName, QuotesOrEncodes) {
  EXPECT_EQ(email::display_name("Alice Smith"), "Alice Smith");
  EXPECT_EQ(email::display_name("Smith, Alice"), "\"Smith, Alice\"");
  EXPECT_EQ(email::display_name("Al \"the\" Boss"), "\"Al \\\"the\\\" Boss\"");
  EXPECT_EQ(email::display_name("Zoë"), "=?UTF-8?B?Wm/Dqw==?=");
  EXPECT_EQ(email::display_name("Eve\r\nBcc: x@y"), "\"Eve  Bcc: x@y\"");
}

TEST(Rfc5322Date, Formats) {
  EXPECT_EQ(email::rfc5322_date(Timestamp(std::chrono::seconds(1614265330))),
            "Thu, 25 Feb 2021 15:02:10 +0000");
  EXPECT_EQ(email::rfc5322_date(Timestamp(std::chrono::milliseconds(1796378400999))),
            "Fri, 04 Dec 2026 10:00:00 +0000");
}

TEST(Address, Validation) {
  struct Case {
    const char* address;
    bool ok;
  };
  const Case cases[] = {
      {"alice@client.example", true},
      {"a.b+tag@sub.client.example", true},
      {"", false},
      {"alice", false},
      {"@client.example", false},
      {"alice@", false},
      {"alice@@client.example", false},
      {"al@ice@client.example", false},
      {"alice smith@client.example", false},
      {"alice@client.example\r\nRCPT TO:<x@y>", false},
      {"<alice@client.example>", false},
      {"alice@client..example", false},
      {"alice@.client.example", false},
      {"alicé@client.example", false},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(email::valid_address(c.address), c.ok) << c.address;
  }
}

TEST(Address, ParseMailbox) {
  auto named = email::parse_mailbox("Herald <herald@msp.example>");
  ASSERT_TRUE(named);
  EXPECT_EQ(named->name, "Herald");
  EXPECT_EQ(named->address, "herald@msp.example");
  auto quoted = email::parse_mailbox("\"MSP, Herald\" <herald@msp.example>");
  ASSERT_TRUE(quoted);
  EXPECT_EQ(quoted->name, "MSP, Herald");
  auto bare = email::parse_mailbox(" herald@msp.example ");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->name, "");
  EXPECT_EQ(bare->address, "herald@msp.example");
  EXPECT_FALSE(email::parse_mailbox("Herald <herald@msp.example"));
  EXPECT_FALSE(email::parse_mailbox("Herald <nope>"));
}

SmtpSettings settings() {
  return {"smtp://127.0.0.1:2525", SmtpTls::required, "Herald <herald@msp.example>", "user",
          "pass"};
}

Outgoing message() {
  Outgoing m;
  m.message_id = "m-123";
  m.channel = "email";
  m.subject = "[ACME] INC-42 is in containment";
  m.text = "Containment started.\nSee the portal.";
  m.html = "<p>Containment started.</p>";
  m.address = "alice@client.example";
  m.recipient_name = "Alice Smith";
  m.thread_key = "inc-acme-42";
  m.now = Timestamp(std::chrono::seconds(1796378400));
  return m;
}

TEST(EmailChannel, ComposesTheWholeMessage) {
  EmailChannel channel(settings());
  auto payload = channel.compose(message(), "=_b");
  ASSERT_TRUE(payload.ok()) << payload.error().message;
  EXPECT_EQ(*payload,
            "Date: Fri, 04 Dec 2026 10:00:00 +0000\r\n"
            "From: Herald <herald@msp.example>\r\n"
            "To: Alice Smith <alice@client.example>\r\n"
            "Subject: [ACME] INC-42 is in containment\r\n"
            "Message-ID: <m-123@msp.example>\r\n"
            "In-Reply-To: <inc-acme-42@msp.example>\r\n"
            "References: <inc-acme-42@msp.example>\r\n"
            "MIME-Version: 1.0\r\n"
            "Auto-Submitted: auto-generated\r\n"
            "X-Herald-Message-Id: m-123\r\n"
            "Content-Type: multipart/alternative;\r\n"
            " boundary=\"=_b\"\r\n"
            "\r\n"
            "--=_b\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
            "Containment started.\r\n"
            "See the portal.\r\n"
            "--=_b\r\n"
            "Content-Type: text/html; charset=UTF-8\r\n"
            "Content-Transfer-Encoding: quoted-printable\r\n"
            "\r\n"
            "<p>Containment started.</p>\r\n"
            "--=_b--\r\n");
}

TEST(EmailChannel, BuildsAnSmtpRequest) {
  EmailChannel channel(settings());
  auto built = channel.build(message());
  ASSERT_TRUE(built.ok());
  const auto& r = std::get<SmtpRequest>(*built);
  EXPECT_EQ(r.url, "smtp://127.0.0.1:2525");
  EXPECT_EQ(r.tls, SmtpTls::required);
  EXPECT_EQ(r.username, "user");
  EXPECT_EQ(r.password, "pass");
  EXPECT_EQ(r.mail_from, "herald@msp.example");
  EXPECT_EQ(r.recipients, std::vector<std::string>{"alice@client.example"});
  // A random boundary each time; the same Message-ID on every retry.
  auto again = channel.build(message());
  ASSERT_TRUE(again.ok());
  const auto& r2 = std::get<SmtpRequest>(*again);
  EXPECT_NE(r.payload, r2.payload);
  EXPECT_NE(r.payload.find("Message-ID: <m-123@msp.example>\r\n"), std::string::npos);
  EXPECT_NE(r2.payload.find("Message-ID: <m-123@msp.example>\r\n"), std::string::npos);
  EXPECT_NE(r.payload.find("boundary=\"=_herald_"), std::string::npos);
}

TEST(EmailChannel, NonAsciiInjectionAndLongLines) {
  EmailChannel channel(settings());
  Outgoing m = message();
  m.subject = "Zoë\r\nBcc: evil@example.com";
  m.recipient_name = "Zoë Ålund";
  m.text = std::string(5000, 'x') + "\n" + "naïve text with = sign ";
  auto built = channel.build(m);
  ASSERT_TRUE(built.ok());
  const std::string& payload = std::get<SmtpRequest>(*built).payload;
  EXPECT_EQ(payload.find("\r\nBcc:"), std::string::npos);
  EXPECT_NE(payload.find("Subject: =?UTF-8?B?"), std::string::npos);
  EXPECT_NE(payload.find("To: =?UTF-8?B?Wm/DqyDDhWx1bmQ=?= <alice@client.example>\r\n"),
            std::string::npos);
  EXPECT_NE(payload.find("na=C3=AFve text with =3D sign=20\r\n"), std::string::npos);
  size_t body = payload.find("\r\n\r\n");
  for (const std::string& line : lines_of(payload.substr(body + 4))) {
    EXPECT_LE(line.size(), 76u);
  }
  for (unsigned char c : payload) {
    EXPECT_LT(c, 0x80);  // everything non-ASCII is encoded
  }
}

TEST(EmailChannel, NoThreadKeyNoThreadingHeaders) {
  EmailChannel channel(settings());
  Outgoing m = message();
  m.thread_key.clear();
  m.recipient_name.clear();
  m.html.clear();
  auto payload = channel.compose(m, "=_b");
  ASSERT_TRUE(payload.ok());
  EXPECT_EQ(payload->find("In-Reply-To"), std::string::npos);
  EXPECT_EQ(payload->find("text/html"), std::string::npos);
  EXPECT_NE(payload->find("To: alice@client.example\r\n"), std::string::npos);
}

TEST(EmailChannel, BadAddressesAreBuildErrors) {
  EmailChannel channel(settings());
  for (const char* bad : {"", "alice", "alice@client.example\r\nBcc: x@y", "a b@c.d"}) {
    Outgoing m = message();
    m.address = bad;
    auto built = channel.build(m);
    ASSERT_FALSE(built.ok()) << bad;
    EXPECT_EQ(built.error().code, "invalid_address");
  }
  SmtpSettings broken = settings();
  broken.from = "Herald";
  auto built = EmailChannel(broken).build(message());
  ASSERT_FALSE(built.ok());
  EXPECT_EQ(built.error().code, "invalid_from");
}

TEST(EmailChannel, Interpret) {
  struct Case {
    int transport_error;
    long status;
    Verdict verdict;
  };
  const Case cases[] =
      {
          {0, 250, Verdict::delivered},  {0, 221, Verdict::delivered},
          {7, 0, Verdict::retryable},    {28, 0, Verdict::retryable},
          {28, 250, Verdict::retryable},  // timed out after the last good reply
          {0, 421, Verdict::retryable},  {0, 451, Verdict::retryable},
          {0, 452, Verdict::retryable},  {0, 550, Verdict::permanent},
          {0, 554, Verdict::permanent},  {55, 550, Verdict::permanent},
      };
  EmailChannel channel(settings());
  for (const Case& c : cases) {
    Response r;
    r.transport_error = c.transport_error;
    r.status_code = c.status;
    r.transport_message = "RCPT failed";
    Outcome o = channel.interpret(r);
    EXPECT_EQ(o.verdict, c.verdict) << c.transport_error << " " << c.status;
    EXPECT_EQ(o.status_code, c.status);
  }
}

}  // namespace
}  // namespace herald::channels
