// Message-level parser tests: start lines, header lines, limits, Content-Length and
// stream framing. Table-driven; every row carries a SCOPED_TRACE so a failure names
// its input.
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/sip/header.hpp"
#include "proxy/sip/message.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"

namespace {

using sw::Errc;
using sw::sip::for_each_list_item;
using sw::sip::frame_stream;
using sw::sip::Framing;
using sw::sip::header_id;
using sw::sip::HeaderId;
using sw::sip::Message;
using sw::sip::parse;
using sw::sip::ParseLimits;

using Lines = std::vector<std::string>;

// RFC 3261 section 24.2 style request headers; every test edits a copy.
Lines base_headers(std::string_view method = "INVITE") {
  return {
      "Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds",
      "Max-Forwards: 70",
      "To: Bob <sip:bob@biloxi.example.com>",
      "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774",
      "Call-ID: a84b4c76e66710@pc33.atlanta.example.com",
      "CSeq: 314159 " + std::string(method),
      "Contact: <sip:alice@pc33.atlanta.example.com>",
      "Content-Length: 0",
  };
}

constexpr std::string_view kInviteLine = "INVITE sip:bob@biloxi.example.com SIP/2.0";

std::string build(std::string_view start_line, const Lines& headers, std::string_view body = "",
                  std::string_view eol = "\r\n") {
  std::string out(start_line);
  out += eol;
  for (const auto& h : headers) {
    out += h;
    out += eol;
  }
  out += eol;
  out += body;
  return out;
}

std::string invite(std::string_view body = "") {
  Lines h = base_headers();
  h.back() = "Content-Length: " + std::to_string(body.size());
  return build(kInviteLine, h, body);
}

// Drops every header line whose name (before ':', trimmed) equals one of names.
Lines without(Lines h, std::initializer_list<std::string_view> names) {
  std::erase_if(h, [&](const std::string& line) {
    auto name = sw::sip::trim(std::string_view(line).substr(0, line.find(':')));
    for (auto n : names)
      if (sw::sip::iequals(name, n)) return true;
    return false;
  });
  return h;
}

Lines with(Lines h, std::initializer_list<std::string> extra) {
  h.insert(h.end(), extra.begin(), extra.end());
  return h;
}

// Checks a failed parse against an expected code and prints the parser's detail.
void expect_error(const sw::Result<Message>& r, Errc want) {
  ASSERT_FALSE(r.ok()) << "accepted";
  EXPECT_EQ(r.error().code, want) << "detail: " << r.error().detail;
  EXPECT_FALSE(r.error().detail.empty());
}

// ---------------------------------------------------------------------------
// Start lines

TEST(RequestLine, Table) {
  struct Row {
    std::string line;
    std::string cseq_method;  // CSeq must agree for the message to be valid
    std::optional<Errc> error;
    std::string_view method, uri;
  };
  const Row rows[] = {
      {"INVITE sip:bob@biloxi.example.com SIP/2.0",
       "INVITE",
       {},
       "INVITE",
       "sip:bob@biloxi.example.com"},
      {"OPTIONS sip:biloxi.example.com SIP/2.0",
       "OPTIONS",
       {},
       "OPTIONS",
       "sip:biloxi.example.com"},
      {"REGISTER sips:registrar.example.com:5061;transport=tcp SIP/2.0",
       "REGISTER",
       {},
       "REGISTER",
       "sips:registrar.example.com:5061;transport=tcp"},
      {"INVITE tel:+1-212-555-0101 SIP/2.0", "INVITE", {}, "INVITE", "tel:+1-212-555-0101"},
      {"INVITE sip:[2001:db8::1]:5060 SIP/2.0", "INVITE", {}, "INVITE", "sip:[2001:db8::1]:5060"},
      {"NEWMETHOD sip:bob@biloxi.example.com SIP/2.0",
       "NEWMETHOD",
       {},
       "NEWMETHOD",
       "sip:bob@biloxi.example.com"},
      // RFC 3261 7.1: the version string is case-insensitive.
      {"INVITE sip:bob@biloxi.example.com sip/2.0",
       "INVITE",
       {},
       "INVITE",
       "sip:bob@biloxi.example.com"},
      {"INVITE sip:bob@biloxi.example.com SIP/2.1", "INVITE", Errc::bad_version, {}, {}},
      {"INVITE sip:bob@biloxi.example.com SIP/3.0", "INVITE", Errc::bad_version, {}, {}},
      {"INVITE sip:bob@biloxi.example.com HTTP/1.1", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE sip:bob@biloxi.example.com SIP2.0", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE sip:bob@biloxi.example.com", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE", "INVITE", Errc::bad_start_line, {}, {}},
      {"", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE  sip:bob@biloxi.example.com SIP/2.0", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE sip:bob@biloxi.example.com  SIP/2.0", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE sip:bob@biloxi.example.com SIP/2.0 ", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE sip:bob@biloxi.example.com SIP/2.0\t", "INVITE", Errc::bad_start_line, {}, {}},
      {" INVITE sip:bob@biloxi.example.com SIP/2.0", "INVITE", Errc::bad_start_line, {}, {}},
      {"IN(VITE sip:bob@biloxi.example.com SIP/2.0", "INVITE", Errc::bad_start_line, {}, {}},
      {"INVITE <sip:bob@biloxi.example.com> SIP/2.0", "INVITE", Errc::bad_uri, {}, {}},
      {"INVITE bob@biloxi.example.com SIP/2.0", "INVITE", Errc::bad_uri, {}, {}},
      {"INVITE sip:bob@biloxi.example.com:0 SIP/2.0", "INVITE", Errc::bad_uri, {}, {}},
      {"INVITE sip:bob@biloxi.example.com:70000 SIP/2.0", "INVITE", Errc::bad_uri, {}, {}},
      {"INVITE sip:bob@bi\"loxi.example.com SIP/2.0", "INVITE", Errc::bad_uri, {}, {}},
      {"INVITE sip:bob@biloxi.example.com\t SIP/2.0", "INVITE", Errc::bad_uri, {}, {}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE("start line: '" + row.line + "'");
    Lines h = without(base_headers(), {"CSeq"});
    h.push_back("CSeq: 1 " + row.cseq_method);
    std::string bytes = build(row.line, h);
    auto r = parse(bytes, Framing::datagram);
    if (row.error) {
      expect_error(r, *row.error);
      continue;
    }
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_TRUE(r->is_request);
    EXPECT_EQ(r->method, row.method);
    EXPECT_EQ(r->request_uri, row.uri);
    EXPECT_EQ(r->status, 0);
    // The routing reads the Request-URI as parse left it, never parsing it again.
    auto uri = sw::sip::parse_uri(row.uri);
    ASSERT_TRUE(uri.ok());
    EXPECT_EQ(r->ruri.scheme, uri->scheme);
    EXPECT_EQ(r->ruri.user, uri->user);
    EXPECT_EQ(r->ruri.host, uri->host);
    EXPECT_EQ(r->ruri.port, uri->port);
    EXPECT_EQ(r->ruri.params, uri->params);
  }
}

TEST(StatusLine, Table) {
  struct Row {
    std::string line;
    std::optional<Errc> error;
    int status;
    std::string_view reason;
  };
  const Row rows[] = {
      {"SIP/2.0 200 OK", {}, 200, "OK"},
      {"SIP/2.0 180 Ringing", {}, 180, "Ringing"},
      {"SIP/2.0 486 Busy Here", {}, 486, "Busy Here"},
      {"SIP/2.0 699 Whatever  with  spaces", {}, 699, "Whatever  with  spaces"},
      {"SIP/2.0 100 ", {}, 100, ""},
      {"SIP/2.0 100", {}, 100, ""},
      {"sip/2.0 200 OK", {}, 200, "OK"},
      {"SIP/2.0 099 Too Low", Errc::bad_start_line, 0, {}},
      {"SIP/2.0 700 Too High", Errc::bad_start_line, 0, {}},
      {"SIP/2.0 2000 OK", Errc::bad_start_line, 0, {}},
      {"SIP/2.0 20 OK", Errc::bad_start_line, 0, {}},
      {"SIP/2.0 2x0 OK", Errc::bad_start_line, 0, {}},
      {"SIP/2.0 -20 OK", Errc::bad_start_line, 0, {}},
      {"SIP/2.0  200 OK", Errc::bad_start_line, 0, {}},
      {"SIP/2.0", Errc::bad_start_line, 0, {}},
      {"SIP/2.0 OK", Errc::bad_start_line, 0, {}},
      {"SIP/1.0 200 OK", Errc::bad_version, 0, {}},
      {"SIP/2.1 200 OK", Errc::bad_version, 0, {}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE("status line: '" + row.line + "'");
    std::string bytes = build(row.line, base_headers());
    auto r = parse(bytes, Framing::datagram);
    if (row.error) {
      expect_error(r, *row.error);
      continue;
    }
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_FALSE(r->is_request);
    EXPECT_EQ(r->status, row.status);
    EXPECT_EQ(r->reason, row.reason);
    EXPECT_TRUE(r->method.empty());
  }
}

TEST(StatusLine, ResponseCSeqMethodIsNotComparedToAnything) {
  Lines h = without(base_headers(), {"CSeq"});
  h.push_back("CSeq: 7 BYE");
  std::string bytes = build("SIP/2.0 481 Call/Transaction Does Not Exist", h);
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->cseq_number, 7u);
  EXPECT_EQ(r->cseq_method, "BYE");
}

// ---------------------------------------------------------------------------
// Header names

TEST(HeaderNames, CompactForms) {
  struct Row {
    std::string_view name;
    HeaderId id;
  };
  const Row rows[] = {
      {"i", HeaderId::CallId},
      {"m", HeaderId::Contact},
      {"v", HeaderId::Via},
      {"f", HeaderId::From},
      {"t", HeaderId::To},
      {"l", HeaderId::ContentLength},
      {"c", HeaderId::ContentType},
      {"k", HeaderId::Supported},
      {"s", HeaderId::Subject},
      {"e", HeaderId::ContentEncoding},
      {"o", HeaderId::Event},
      {"r", HeaderId::ReferTo},
      {"u", HeaderId::AllowEvents},
      {"x", HeaderId::SessionExpires},
      {"y", HeaderId::Identity},
      {"b", HeaderId::ReferredBy},
      {"j", HeaderId::RejectContact},
      {"a", HeaderId::AcceptContact},
      {"d", HeaderId::RequestDisposition},
      // Upper case compact forms (RFC 4475 uses "I:", "C:", "L:", "M:").
      {"I", HeaderId::CallId},
      {"M", HeaderId::Contact},
      {"V", HeaderId::Via},
      {"L", HeaderId::ContentLength},
      {"C", HeaderId::ContentType},
      {"T", HeaderId::To},
      // Letters without a compact header of ours, including 'n' (Identity-Info, obsolete).
      {"n", HeaderId::Other},
      {"z", HeaderId::Other},
      {"q", HeaderId::Other},
      {"g", HeaderId::Other},
      {"w", HeaderId::Other},
      {"1", HeaderId::Other},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string("compact name '") + std::string(row.name) + "'");
    EXPECT_EQ(header_id(row.name), row.id);
    // And through the parser, as an extra header line.
    std::string line = std::string(row.name) + ": 1";
    Lines h = base_headers();
    if (row.id != HeaderId::Other && row.id != HeaderId::Via && row.id != HeaderId::Contact) {
      // Single-valued headers cannot repeat, so swap out the long form first.
      h = without(h, {sw::sip::header_name(row.id)});
      if (row.id == HeaderId::CallId) line = std::string(row.name) + ": abc@host";
      if (row.id == HeaderId::From) line = std::string(row.name) + ": <sip:a@b>;tag=9";
      if (row.id == HeaderId::To) line = std::string(row.name) + ": <sip:a@b>";
      if (row.id == HeaderId::ContentLength) line = std::string(row.name) + ": 0";
    }
    if (row.id == HeaderId::Via) line = std::string(row.name) + ": SIP/2.0/TCP h;branch=z9hG4bKc";
    if (row.id == HeaderId::Contact) line = std::string(row.name) + ": <sip:c@d>";
    h.push_back(line);
    std::string bytes = build(kInviteLine, h);
    auto r = parse(bytes, Framing::datagram);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    const auto& last = r->headers.back();
    EXPECT_EQ(last.name, row.name);
    EXPECT_EQ(last.id, row.id);
  }
}

TEST(HeaderNames, MandatoryHeadersInCompactFormOnly) {
  std::string bytes =
      build(kInviteLine, {"v: SIP/2.0/UDP h.example.com;branch=z9hG4bKx", "f: <sip:a@b>;tag=1",
                          "t: <sip:c@d>", "i: compact@h", "CSeq: 1 INVITE", "l: 0"});
  auto r = parse(bytes, Framing::stream);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->value(HeaderId::CallId), "compact@h");
  EXPECT_EQ(r->count(HeaderId::Via), 1u);
  EXPECT_EQ(r->value(HeaderId::ContentLength), "0");
}

TEST(HeaderNames, FullNamesAnyCase) {
  struct Row {
    std::string_view name;
    HeaderId id;
  };
  const Row rows[] = {
      {"via", HeaderId::Via},
      {"VIA", HeaderId::Via},
      {"vIa", HeaderId::Via},
      {"cAlL-iD", HeaderId::CallId},
      {"CALL-ID", HeaderId::CallId},
      {"cseq", HeaderId::CSeq},
      {"CSEQ", HeaderId::CSeq},
      {"content-length", HeaderId::ContentLength},
      {"CONTENT-TYPE", HeaderId::ContentType},
      {"max-FORWARDS", HeaderId::MaxForwards},
      {"record-route", HeaderId::RecordRoute},
      {"ROUTE", HeaderId::Route},
      {"PROXY-REQUIRE", HeaderId::ProxyRequire},
      {"www-authenticate", HeaderId::WwwAuthenticate},
      {"Proxy-Authorization", HeaderId::ProxyAuthorization},
      {"session-expires", HeaderId::SessionExpires},
      {"user-agent", HeaderId::UserAgent},
      {"SERVER", HeaderId::Server},
      {"path", HeaderId::Path},
      {"identity", HeaderId::Identity},
      {"refer-to", HeaderId::ReferTo},
      {"ALLOW-EVENTS", HeaderId::AllowEvents},
      // Near misses stay unknown, so they are forwarded, not interpreted.
      {"Vias", HeaderId::Other},
      {"Via-", HeaderId::Other},
      {"Call_ID", HeaderId::Other},
      {"CallID", HeaderId::Other},
      {"Content-Length2", HeaderId::Other},
      {"Tos", HeaderId::Other},
      {"ll", HeaderId::Other},
      {"", HeaderId::Other},
      {"C%6Fntact", HeaderId::Other},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string("name '") + std::string(row.name) + "'");
    EXPECT_EQ(header_id(row.name), row.id);
  }
}

TEST(HeaderNames, CanonicalNamesRoundTrip) {
  for (int i = 1; i < static_cast<int>(HeaderId::Count_); ++i) {
    auto id = static_cast<HeaderId>(i);
    SCOPED_TRACE(i);
    auto name = sw::sip::header_name(id);
    ASSERT_FALSE(name.empty());
    EXPECT_EQ(header_id(name), id);
  }
  EXPECT_EQ(sw::sip::header_name(HeaderId::CallId), "Call-ID");
  EXPECT_EQ(sw::sip::header_name(HeaderId::WwwAuthenticate), "WWW-Authenticate");
  EXPECT_EQ(sw::sip::header_name(HeaderId::Other), "");
}

// ---------------------------------------------------------------------------
// Header lines

TEST(HeaderLines, WhitespaceAroundTheColon) {
  struct Row {
    std::string line;
    std::string_view name, value;
  };
  const Row rows[] = {
      {"Call-ID : abc@h", "Call-ID", "abc@h"},
      {"Call-ID\t:\tabc@h", "Call-ID", "abc@h"},
      {"Call-ID:abc@h", "Call-ID", "abc@h"},
      {"Call-ID:    abc@h   ", "Call-ID", "abc@h"},
      {"Call-ID     :abc@h", "Call-ID", "abc@h"},
      {"i :abc@h", "i", "abc@h"},
      {"CALL-ID: abc@h", "CALL-ID", "abc@h"},
      {"Call-ID: abc:def@h", "Call-ID", "abc:def@h"},  // only the first colon separates
  };
  for (const auto& row : rows) {
    SCOPED_TRACE("line: '" + row.line + "'");
    Lines h = without(base_headers(), {"Call-ID"});
    h.push_back(row.line);
    std::string bytes = build(kInviteLine, h);
    auto r = parse(bytes, Framing::datagram);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    const auto* call_id = r->first(HeaderId::CallId);
    if (call_id == nullptr) {
      ADD_FAILURE() << "no Call-ID header";
      continue;
    }
    EXPECT_EQ(call_id->name, row.name);
    EXPECT_EQ(call_id->value, row.value);
  }
}

TEST(HeaderLines, MalformedLinesRejected) {
  const std::string rows[] = {
      "NoColonHere", ": value with no name", "Bad Name: x",       "Bad\"Name: x", "Na(me: x",
      "Na,me: x",    "Via\x7f: x",           "\xC3\x9Cnicode: x",
      "Name\r: x",  // a bare CR is not whitespace before the colon
  };
  for (const auto& line : rows) {
    SCOPED_TRACE("line: '" + line + "'");
    std::string bytes = build(kInviteLine, with(base_headers(), {line}));
    expect_error(parse(bytes, Framing::datagram), Errc::bad_header);
  }
}

TEST(HeaderLines, UnknownHeadersKeptAsWritten) {
  std::string bytes =
      build(kInviteLine,
            with(base_headers(), {"X-Custom-Thing: a; b , c", "P-Asserted-Identity: <sip:x@y>"}));
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  ASSERT_EQ(r->headers.size(), 10u);
  EXPECT_EQ(r->headers[8].id, HeaderId::Other);
  EXPECT_EQ(r->headers[8].name, "X-Custom-Thing");
  EXPECT_EQ(r->headers[8].value, "a; b , c");
  EXPECT_EQ(r->headers[9].name, "P-Asserted-Identity");
}

// ---------------------------------------------------------------------------
// Line folding (RFC 3261 7.3.1)

TEST(Folding, ContinuationLinesJoinThePreviousValue) {
  std::string bytes =
      build(kInviteLine, with(base_headers(), {"Subject: first", " second", "\tthird"}));
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  const auto* subject = r->first(HeaderId::Subject);
  ASSERT_NE(subject, nullptr);
  EXPECT_EQ(subject->value, "first\r\n second\r\n\tthird");
  // The header's byte span covers all three physical lines.
  EXPECT_EQ(r->raw.substr(subject->begin, subject->end - subject->begin),
            "Subject: first\r\n second\r\n\tthird\r\n");
  EXPECT_EQ(r->headers.size(), 9u);
}

TEST(Folding, Table) {
  struct Row {
    std::string_view what;
    Lines replace;  // replaces the header of the same name in the base set
    HeaderId id;
    std::string_view value;
  };
  const Row rows[] = {
      {"value only on the continuation", {"Call-ID:", " folded@h"}, HeaderId::CallId, "folded@h"},
      {"CSeq method on the next line",
       {"CSeq: 314159", "  INVITE"},
       HeaderId::CSeq,
       "314159\r\n  INVITE"},
      {"Via folded around '/'",
       {"Via: SIP /", " 2.0 / UDP", "   h.example.com;branch=z9hG4bKf"},
       HeaderId::Via,
       "SIP /\r\n 2.0 / UDP\r\n   h.example.com;branch=z9hG4bKf"},
      {"tab continuation",
       {"To: <sip:bob@biloxi.example.com>", "\t;tag=xyz"},
       HeaderId::To,
       "<sip:bob@biloxi.example.com>\r\n\t;tag=xyz"},
      {"whitespace-only continuation adds nothing",
       {"Max-Forwards: 70", "   "},
       HeaderId::MaxForwards,
       "70"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.what));
    std::string name = row.replace.front().substr(0, row.replace.front().find(':'));
    Lines h = without(base_headers(), {name});
    h.insert(h.end(), row.replace.begin(), row.replace.end());
    std::string bytes = build(kInviteLine, h);
    auto r = parse(bytes, Framing::datagram);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->value(row.id), row.value);
    if (row.id == HeaderId::CSeq) {
      EXPECT_EQ(r->cseq_number, 314159u);
      EXPECT_EQ(r->cseq_method, "INVITE");
    }
    if (row.id == HeaderId::Via) {
      auto via = sw::sip::parse_via(r->value(HeaderId::Via));
      ASSERT_TRUE(via.ok()) << via.error().detail;
      EXPECT_EQ(via->host, "h.example.com");
    }
    if (row.id == HeaderId::To) {
      EXPECT_EQ(sw::sip::tag_of(r->value(HeaderId::To)), "xyz");
    }
  }
}

TEST(Folding, ContinuationBeforeAnyHeaderRejected) {
  std::string bytes = build(kInviteLine, [] {
    Lines h = base_headers();
    h.insert(h.begin(), " orphan continuation");
    return h;
  }());
  expect_error(parse(bytes, Framing::datagram), Errc::bad_header);
}

// ---------------------------------------------------------------------------
// Splitting multi-valued headers

TEST(ListItems, ForEachListItemTable) {
  struct Row {
    std::string input;
    std::vector<std::string_view> items;
    bool balanced;
  };
  const Row rows[] = {
      {"a, b ,c", {"a", "b", "c"}, true},
      {"  spaced  ", {"spaced"}, true},
      {"", {}, true},
      {" , ,, ", {}, true},
      {",,a,,b,,", {"a", "b"}, true},
      {"a,\r\n b", {"a", "b"}, true},  // folded list
      {R"("Doe, John" <sip:j@x>, <sip:k@y>)", {R"("Doe, John" <sip:j@x>)", "<sip:k@y>"}, true},
      {"<sip:a@b;x=1,2>, sip:c@d", {"<sip:a@b;x=1,2>", "sip:c@d"}, true},
      {R"("a \" , b" <sip:x@y>, z)", {R"("a \" , b" <sip:x@y>)", "z"}, true},
      {R"("ends in backslash\\", next)", {R"("ends in backslash\\")", "next"}, true},
      {"SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b;branch=2",
       {"SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b;branch=2"},
       true},
      {R"("unterminated, x)", {}, false},
      {"<sip:a@b, c", {}, false},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE("input: '" + row.input + "'");
    std::vector<std::string_view> got;
    bool balanced = for_each_list_item(row.input, [&](std::string_view item) {
      got.push_back(item);
      return true;
    });
    EXPECT_EQ(balanced, row.balanced);
    if (row.balanced) {
      EXPECT_EQ(got, row.items);
    }
  }
}

TEST(ListItems, CallbackCanStopEarly) {
  std::vector<std::string_view> got;
  bool balanced = for_each_list_item("a, b, c", [&](std::string_view item) {
    got.push_back(item);
    return false;
  });
  EXPECT_TRUE(balanced);
  EXPECT_EQ(got, (std::vector<std::string_view>{"a"}));
}

TEST(ListItems, MultipleViaValuesInOneHeader) {
  Lines h = without(base_headers(), {"Via"});
  h.push_back(
      "Via: SIP/2.0/UDP first.example.com;branch=z9hG4bK1, SIP/2.0/TCP "
      "second.example.com:5061;branch=z9hG4bK2");
  h.push_back("v: SIP/2.0/SCTP third.example.com;branch=z9hG4bK3");
  std::string bytes = build(kInviteLine, h);
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->count(HeaderId::Via), 2u);
  std::vector<std::string_view> hosts;
  for (const auto& hdr : r->headers) {
    if (hdr.id != HeaderId::Via) continue;
    for_each_list_item(hdr.value, [&](std::string_view v) {
      auto via = sw::sip::parse_via(v);
      EXPECT_TRUE(via.ok()) << v;
      if (via.ok()) hosts.push_back(via->host);
      return true;
    });
  }
  EXPECT_EQ(hosts, (std::vector<std::string_view>{"first.example.com", "second.example.com",
                                                  "third.example.com"}));
}

// parse keeps the top Via (parsed) and the From/To tags, which every layer
// above reads for each message.
TEST(ListItems, TopViaAndTagsAreKeptByParse) {
  Lines h = without(base_headers(), {"Via", "From", "To"});
  h.push_back("v: SIP/2.0/TCP first.example.com:5062;rport;branch=z9hG4bK1, SIP/2.0/UDP second.example.com");
  h.push_back("Via: SIP/2.0/UDP third.example.com;branch=z9hG4bK3");
  h.push_back("f: \"A, ;tag=no\" <sip:a@example.com;tag=uri-param>;tag=from1");
  h.push_back("To: <sip:b@example.com>");
  std::string bytes = build(kInviteLine, h);
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(sw::sip::top_via(*r), "SIP/2.0/TCP first.example.com:5062;rport;branch=z9hG4bK1");
  EXPECT_EQ(r->via.transport, "TCP");
  EXPECT_EQ(r->via.host, "first.example.com");
  EXPECT_EQ(r->via.port, 5062);
  EXPECT_EQ(r->via.branch, "z9hG4bK1");
  EXPECT_TRUE(r->via.has_rport);
  EXPECT_EQ(r->from_tag, "from1");
  EXPECT_EQ(r->from_tag, sw::sip::tag_of(r->value(HeaderId::From)));
  EXPECT_EQ(r->to_tag, "");
}

// ---------------------------------------------------------------------------
// Limits

TEST(Limits, MessageSize) {
  std::string bytes = invite("v=0\r\n");
  ParseLimits limits;
  limits.max_message_bytes = bytes.size();
  EXPECT_TRUE(parse(bytes, Framing::datagram, limits).ok());
  limits.max_message_bytes = bytes.size() - 1;
  expect_error(parse(bytes, Framing::datagram, limits), Errc::too_large);
  expect_error(parse(bytes, Framing::stream, limits), Errc::too_large);
}

TEST(Limits, HeaderCount) {
  std::string bytes = invite();
  ParseLimits limits;
  limits.max_headers = base_headers().size();
  EXPECT_TRUE(parse(bytes, Framing::datagram, limits).ok());
  limits.max_headers = base_headers().size() - 1;
  expect_error(parse(bytes, Framing::datagram, limits), Errc::too_many_headers);
}

TEST(Limits, HeaderCountDefaultStopsAFlood) {
  Lines h = base_headers();
  for (int i = 0; i < 200; ++i) h.push_back("X-Flood: " + std::to_string(i));
  expect_error(parse(build(kInviteLine, h), Framing::datagram), Errc::too_many_headers);
}

TEST(Limits, HeaderLineLength) {
  std::string line = "Subject: " + std::string(100, 'x');
  std::string bytes = build(kInviteLine, with(base_headers(), {line}));
  ParseLimits limits;
  limits.max_line_bytes = line.size();  // the limit excludes the CRLF
  EXPECT_TRUE(parse(bytes, Framing::datagram, limits).ok());
  limits.max_line_bytes = line.size() - 1;
  expect_error(parse(bytes, Framing::datagram, limits), Errc::line_too_long);
}

TEST(Limits, StartLineLength) {
  std::string bytes = invite();
  ParseLimits limits;
  limits.max_line_bytes = kInviteLine.size() - 1;
  expect_error(parse(bytes, Framing::datagram, limits), Errc::line_too_long);
}

TEST(Limits, FoldedContinuationLineCountsOnItsOwn) {
  // The continuation is the longest physical line, so only it can trip the limit.
  std::string cont = " " + std::string(150, 'y');
  std::string bytes = build(kInviteLine, with(base_headers(), {"Subject: a", cont}));
  ParseLimits limits;
  limits.max_line_bytes = cont.size();
  EXPECT_TRUE(parse(bytes, Framing::datagram, limits).ok());
  limits.max_line_bytes = cont.size() - 1;
  expect_error(parse(bytes, Framing::datagram, limits), Errc::line_too_long);
}

TEST(Limits, TwoHundredKilobyteHeaderRejected) {
  std::string bytes =
      build(kInviteLine, with(base_headers(), {"X-Big: " + std::string(200 * 1024, 'a')}));
  expect_error(parse(bytes, Framing::datagram), Errc::too_large);
  expect_error(parse(bytes, Framing::stream), Errc::too_large);
  // Even when the message size limit would allow it, the line limit does not.
  ParseLimits roomy;
  roomy.max_message_bytes = 1 << 20;
  expect_error(parse(bytes, Framing::datagram, roomy), Errc::line_too_long);
  // On a stream the framer must give up instead of buffering forever: the line
  // limit is hit before the message limit.
  auto framed = frame_stream(bytes);
  ASSERT_FALSE(framed.ok());
  EXPECT_EQ(framed.error().code, Errc::line_too_long);
  std::string no_end_yet = bytes.substr(0, 100 * 1024);  // header line not finished
  auto partial = frame_stream(no_end_yet);
  ASSERT_FALSE(partial.ok());
  EXPECT_EQ(partial.error().code, Errc::line_too_long);
  // Many short lines that never end the header block hit the message limit.
  std::string many = std::string(kInviteLine) + "\r\n";
  while (many.size() <= 70000) many += "X-Filler: " + std::string(100, 'b') + "\r\n";
  auto endless = frame_stream(many);
  ASSERT_FALSE(endless.ok());
  EXPECT_EQ(endless.error().code, Errc::too_large);
}

TEST(Limits, StreamBodyBeyondLimit) {
  Lines h = without(base_headers(), {"Content-Length"});
  h.push_back("Content-Length: 70000");
  std::string bytes = build(kInviteLine, h);
  auto framed = frame_stream(bytes);  // headers only so far; the body would overflow
  ASSERT_FALSE(framed.ok());
  EXPECT_EQ(framed.error().code, Errc::too_large);
}

// ---------------------------------------------------------------------------
// Content-Length (RFC 3261 18.3 and 20.14)

TEST(ContentLength, DatagramTable) {
  struct Row {
    std::string_view what;
    std::optional<std::string> cl_line;  // nullopt: no Content-Length header
    std::string payload;                 // bytes after the empty line
    std::optional<Errc> error;
    std::string_view body;
  };
  const Row rows[] = {
      {"absent, no body", std::nullopt, "", {}, ""},
      {"absent, body runs to datagram end", std::nullopt, "hello", {}, "hello"},
      {"exact", "Content-Length: 5", "hello", {}, "hello"},
      {"compact", "l: 5", "hello", {}, "hello"},
      {"leading zeros", "Content-Length: 005", "hello", {}, "hello"},
      {"smaller: body truncated", "Content-Length: 3", "hello", {}, "hel"},
      {"zero with trailing CRLF", "Content-Length: 0", "\r\n", {}, ""},
      {"larger than the datagram", "Content-Length: 6", "hello", Errc::bad_content_length, {}},
      {"negative", "Content-Length: -1", "hello", Errc::bad_content_length, {}},
      {"not a number", "Content-Length: five", "hello", Errc::bad_content_length, {}},
      {"plus sign", "Content-Length: +5", "hello", Errc::bad_content_length, {}},
      {"hex", "Content-Length: 0x5", "hello", Errc::bad_content_length, {}},
      {"two numbers", "Content-Length: 5 5", "hello", Errc::bad_content_length, {}},
      {"empty", "Content-Length:", "hello", Errc::bad_content_length, {}},
      {"over 32 bits", "Content-Length: 4294967296", "hello", Errc::bad_content_length, {}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.what));
    Lines h = without(base_headers(), {"Content-Length"});
    if (row.cl_line) h.push_back(*row.cl_line);
    std::string bytes = build(kInviteLine, h, row.payload);
    auto r = parse(bytes, Framing::datagram);
    if (row.error) {
      expect_error(r, *row.error);
      continue;
    }
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->body, row.body);
    // raw ends where the body ends; trailing datagram bytes are not part of it.
    EXPECT_EQ(r->raw.size(), bytes.size() - row.payload.size() + row.body.size());
    EXPECT_EQ(r->raw.data() + r->raw.size(), r->body.data() + r->body.size());
  }
}

TEST(ContentLength, StreamRequiresIt) {
  std::string without_cl = build(kInviteLine, without(base_headers(), {"Content-Length"}));
  expect_error(parse(without_cl, Framing::stream), Errc::bad_content_length);
  EXPECT_TRUE(parse(without_cl, Framing::datagram).ok());

  std::string with_body = invite("hello");
  auto r = parse(with_body, Framing::stream);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->body, "hello");
}

// ---------------------------------------------------------------------------
// Stream framing

TEST(FrameStream, EveryPrefixIsIncomplete) {
  std::string bytes = invite("v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE("prefix length " + std::to_string(n));
    auto r = frame_stream(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << "framed " << *r << " bytes";
    ASSERT_EQ(r.error().code, Errc::incomplete) << r.error().detail;
  }
  auto full = frame_stream(bytes);
  ASSERT_TRUE(full.ok()) << full.error().detail;
  EXPECT_EQ(*full, bytes.size());
}

TEST(FrameStream, BackToBackMessagesFrameSeparately) {
  std::string first = invite("first body");
  Lines h = base_headers("BYE");
  h.back() = "l: 4";
  std::string second = build("BYE sip:bob@biloxi.example.com SIP/2.0", h, "tail");
  std::string stream = first + second + first.substr(0, 10);  // and the start of a third

  std::string_view rest = stream;
  auto a = frame_stream(rest);
  ASSERT_TRUE(a.ok()) << a.error().detail;
  EXPECT_EQ(*a, first.size());
  auto ma = parse(rest.substr(0, *a), Framing::stream);
  ASSERT_TRUE(ma.ok()) << ma.error().detail;
  EXPECT_EQ(ma->method, "INVITE");
  EXPECT_EQ(ma->body, "first body");

  rest.remove_prefix(*a);
  auto b = frame_stream(rest);
  ASSERT_TRUE(b.ok()) << b.error().detail;
  EXPECT_EQ(*b, second.size());
  auto mb = parse(rest.substr(0, *b), Framing::stream);
  ASSERT_TRUE(mb.ok()) << mb.error().detail;
  EXPECT_EQ(mb->method, "BYE");
  EXPECT_EQ(mb->body, "tail");

  rest.remove_prefix(*b);
  auto c = frame_stream(rest);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::incomplete);
}

TEST(FrameStream, FindsContentLengthInAnySpelling) {
  const std::string rows[] = {"Content-Length: 4", "content-length:4", "CONTENT-LENGTH   :   4",
                              "l: 4", "L:4"};
  for (const auto& line : rows) {
    SCOPED_TRACE(line);
    Lines h = without(base_headers(), {"Content-Length"});
    h.insert(h.begin() + 2, line);  // not the last header
    std::string bytes = build(kInviteLine, h, "abcd") + "NEXT";
    auto r = frame_stream(bytes);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(*r, bytes.size() - 4);
  }
}

TEST(FrameStream, ErrorTable) {
  struct Row {
    std::string_view what;
    Lines cl_lines;
    Errc error;
  };
  const Row rows[] = {
      {"missing", {}, Errc::bad_content_length},
      {"not a number", {"Content-Length: lots"}, Errc::bad_content_length},
      {"negative", {"Content-Length: -999"}, Errc::bad_content_length},
      {"conflicting", {"Content-Length: 13", "Content-Length: 5"}, Errc::bad_content_length},
      {"conflicting compact", {"Content-Length: 1", "l: 2"}, Errc::bad_content_length},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.what));
    Lines h = without(base_headers(), {"Content-Length"});
    h.insert(h.end(), row.cl_lines.begin(), row.cl_lines.end());
    std::string bytes = build(kInviteLine, h, "hello world, and more");
    auto r = frame_stream(bytes);
    if (r.ok()) {
      ADD_FAILURE() << "framed " << *r << " bytes";
      continue;
    }
    EXPECT_EQ(r.error().code, row.error) << r.error().detail;
  }
}

// A folded Content-Length value is legal (HCOLON allows LWS, which may contain a
// CRLF), and parse() reads it; the framer must agree or a valid TCP message is
// refused.
TEST(FrameStream, FoldedContentLengthValue) {
  Lines h = without(base_headers(), {"Content-Length"});
  h.push_back("Content-Length:");
  h.push_back(" 5");
  std::string bytes = build(kInviteLine, h, "hello");
  auto parsed = parse(bytes, Framing::stream);
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  EXPECT_EQ(parsed->body, "hello");
  auto framed = frame_stream(bytes);
  ASSERT_TRUE(framed.ok()) << framed.error().detail;
  EXPECT_EQ(*framed, bytes.size());
}

// Continuation lines belong to the previous header; a folded Subject whose second
// line happens to read "l: ..." is not a Content-Length header.
TEST(FrameStream, ContinuationLineIsNotAHeader) {
  std::string bytes = build(kInviteLine, with(base_headers(), {"Subject: call me", " l: later"}));
  auto parsed = parse(bytes, Framing::stream);
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  EXPECT_EQ(parsed->value(HeaderId::Subject), "call me\r\n l: later");
  auto framed = frame_stream(bytes);
  ASSERT_TRUE(framed.ok()) << framed.error().detail;
  EXPECT_EQ(*framed, bytes.size());
}

// parse() accepts bare-LF messages (RFC 3261 7: be liberal); over TCP the framer
// must find their end too, or such a peer's connection stalls until the size limit.
TEST(FrameStream, BareLfMessage) {
  Lines h = base_headers();
  h.back() = "Content-Length: 5";
  std::string bytes = build(kInviteLine, h, "hello", "\n");
  auto parsed = parse(bytes, Framing::stream);
  ASSERT_TRUE(parsed.ok()) << parsed.error().detail;
  auto framed = frame_stream(bytes);
  ASSERT_TRUE(framed.ok()) << framed.error().detail;
  EXPECT_EQ(*framed, bytes.size());
}

// ---------------------------------------------------------------------------
// Header cardinality and presence

TEST(Headers, SingleValuedHeaderTwiceRejected) {
  const Lines rows[] = {
      {"Call-ID: other@h"},
      {"i: other@h"},
      {"From: <sip:x@y>;tag=2"},
      {"f: <sip:x@y>;tag=2"},
      {"To: <sip:x@y>"},
      {"t: <sip:x@y>"},
      {"CSeq: 314159 INVITE"},  // even an identical copy
      {"Max-Forwards: 70"},
      {"Content-Length: 0"},
      {"l: 0"},
      {"Content-Type: application/sdp", "c: application/sdp"},
      {"Expires: 10", "expires: 20"},
  };
  for (const auto& extra : rows) {
    SCOPED_TRACE(extra.front());
    Lines h = base_headers();
    h.insert(h.end(), extra.begin(), extra.end());
    expect_error(parse(build(kInviteLine, h), Framing::datagram), Errc::duplicate_header);
  }
}

TEST(Headers, MultiValuedHeadersMayRepeat) {
  const std::string rows[] = {
      "Via: SIP/2.0/TCP second.example.com;branch=z9hG4bK2",
      "Contact: <sip:second@h>",
      "Route: <sip:p1.example.com;lr>",
      "Record-Route: <sip:p2.example.com;lr>",
      "Supported: timer",
      "Require: 100rel",
      "X-Unknown: again",
  };
  for (const auto& line : rows) {
    SCOPED_TRACE(line);
    Lines h = with(base_headers(), {line, line});
    std::string bytes = build(kInviteLine, h);
    auto r = parse(bytes, Framing::datagram);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->headers.size(), base_headers().size() + 2);
  }
}

TEST(Headers, MissingMandatoryHeader) {
  const std::string_view mandatory[] = {"Via", "From", "To", "Call-ID", "CSeq"};
  for (auto name : mandatory) {
    SCOPED_TRACE(std::string(name));
    expect_error(parse(build(kInviteLine, without(base_headers(), {name})), Framing::datagram),
                 Errc::missing_header);
    expect_error(parse(build("SIP/2.0 200 OK", without(base_headers(), {name})), Framing::datagram),
                 Errc::missing_header);
  }
  // Max-Forwards is optional for the parser (RFC 2543 peers, RFC 4475 3.4.1).
  std::string bytes = build(kInviteLine, without(base_headers(), {"Max-Forwards"}));
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->first(HeaderId::MaxForwards), nullptr);
}

TEST(Headers, EmptyCallIdRejected) {
  Lines h = without(base_headers(), {"Call-ID"});
  h.push_back("Call-ID:   ");
  expect_error(parse(build(kInviteLine, h), Framing::datagram), Errc::bad_header);
}

TEST(Headers, CSeqTable) {
  struct Row {
    std::string start_line, cseq;
    std::optional<Errc> error;
    std::uint32_t number;
  };
  const Row rows[] = {
      {std::string(kInviteLine), "1 INVITE", {}, 1},
      {std::string(kInviteLine), "0 INVITE", {}, 0},
      {std::string(kInviteLine), "4294967295 INVITE", {}, 4294967295u},
      {std::string(kInviteLine), "12\tINVITE", {}, 12},
      {std::string(kInviteLine), "1 OPTIONS", Errc::cseq_mismatch, 0},
      {std::string(kInviteLine), "1 invite", Errc::cseq_mismatch, 0},  // methods are case-sensitive
      {std::string(kInviteLine), "4294967296 INVITE", Errc::bad_value, 0},
      {std::string(kInviteLine), "-1 INVITE", Errc::bad_value, 0},
      {std::string(kInviteLine), "INVITE", Errc::bad_value, 0},
      {std::string(kInviteLine), "1INVITE", Errc::bad_header, 0},
      {std::string(kInviteLine), "1", Errc::bad_header, 0},
      {std::string(kInviteLine), "1 INV ITE", Errc::bad_header, 0},
      {"ACK sip:bob@biloxi.example.com SIP/2.0", "314159 ACK", {}, 314159},
      {"CANCEL sip:bob@biloxi.example.com SIP/2.0", "314159 CANCEL", {}, 314159},
      {"ACK sip:bob@biloxi.example.com SIP/2.0", "314159 INVITE", Errc::cseq_mismatch, 0},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.start_line + " / CSeq: " + row.cseq);
    Lines h = without(base_headers(), {"CSeq"});
    h.push_back("CSeq: " + row.cseq);
    std::string bytes = build(row.start_line, h);
    auto r = parse(bytes, Framing::datagram);
    if (row.error) {
      expect_error(r, *row.error);
      continue;
    }
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->cseq_number, row.number);
    EXPECT_EQ(r->cseq_method, r->method);
  }
}

TEST(Headers, ScalarRanges) {
  struct Row {
    std::string line;
    std::optional<Errc> error;
  };
  const Row rows[] = {
      {"Max-Forwards: 0", {}},
      {"Max-Forwards: 255", {}},
      {"Max-Forwards: 0068", {}},
      {"Max-Forwards: 256", Errc::bad_value},
      {"Max-Forwards: 300", Errc::bad_value},
      {"Max-Forwards: -1", Errc::bad_value},
      {"Max-Forwards: seventy", Errc::bad_value},
      {"Max-Forwards:", Errc::bad_value},
      {"Expires: 0", {}},
      {"Expires: 4294967295", {}},
      {"Expires: 4294967296", Errc::bad_value},
      {"Expires: 1" + std::string(100, '0'), Errc::bad_value},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.line);
    Lines h = with(without(base_headers(), {"Max-Forwards"}), {row.line});
    std::string bytes = build(kInviteLine, h);
    auto r = parse(bytes, Framing::datagram);
    if (row.error) {
      expect_error(r, *row.error);
    } else {
      EXPECT_TRUE(r.ok()) << r.error().detail;
    }
  }
}

// ---------------------------------------------------------------------------
// Garbage and truncation

TEST(Garbage, Table) {
  struct Row {
    std::string_view what;
    std::string bytes;
    Errc error;
  };
  const Row rows[] = {
      {"empty", "", Errc::bad_start_line},
      {"CRLF only", "\r\n", Errc::bad_start_line},
      {"keep-alive pair", "\r\n\r\n", Errc::bad_start_line},
      {"no line break", "hello world", Errc::bad_start_line},
      {"one word line", "hello\r\n\r\n", Errc::bad_start_line},
      {"binary", std::string("\0\x01\x02\xff\xfe\r\n\r\n", 9), Errc::bad_start_line},
      {"TLS ClientHello on the SIP port",
       std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), Errc::bad_start_line},
      {"HTTP request", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", Errc::bad_start_line},
      {"status line without line break", "SIP/2.0 200 OK", Errc::bad_start_line},
      {"start line only", std::string(kInviteLine) + "\r\n", Errc::bad_header},
      {"no headers", std::string(kInviteLine) + "\r\n\r\n", Errc::missing_header},
      {"response without headers", "SIP/2.0 200 OK\r\n\r\n", Errc::missing_header},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.what));
    expect_error(parse(row.bytes, Framing::datagram), row.error);
  }
}

TEST(Garbage, RandomBytesNeverParse) {
  std::mt19937 rng(4475);
  std::uniform_int_distribution<int> len(0, 400);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes(static_cast<std::size_t>(len(rng)), '\0');
    for (auto& c : bytes) c = static_cast<char>(byte(rng));
    auto r = parse(bytes, Framing::datagram);
    ASSERT_FALSE(r.ok()) << "random buffer #" << i << " parsed";
    (void)frame_stream(bytes);  // must not crash either
  }
}

// Single-byte corruption anywhere in a valid message: whatever the verdict, an
// accepted message's views must stay inside the buffer.
TEST(Garbage, MutatedMessagesKeepViewsInBounds) {
  const std::string original = invite("v=0\r\n");
  const char replacements[] = {'\0', '\r', '\n', ' ', ':', ';', ',', '"', '<', '>', '\xff'};
  for (std::size_t pos = 0; pos < original.size(); ++pos) {
    for (char c : replacements) {
      std::string bytes = original;
      bytes[pos] = c;
      auto r = parse(bytes, Framing::datagram);
      if (!r.ok()) continue;
      SCOPED_TRACE("byte " + std::to_string(pos) + " -> " +
                   std::to_string(static_cast<unsigned char>(c)));
      const char* lo = bytes.data();
      const char* hi = bytes.data() + bytes.size();
      ASSERT_EQ(r->raw.data(), lo);
      ASSERT_LE(r->raw.size(), bytes.size());
      ASSERT_TRUE(r->body.data() >= lo && r->body.data() + r->body.size() <= hi);
      for (const auto& h : r->headers) {
        ASSERT_TRUE(h.value.empty() ||
                    (h.value.data() >= lo && h.value.data() + h.value.size() <= hi));
        ASSERT_LE(h.end, r->headers_end);
      }
    }
  }
}

TEST(Truncation, EveryPrefixOfAMessageWithABodyIsRejected) {
  std::string bytes = invite("v=0\r\ns=-\r\n");
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    SCOPED_TRACE("prefix length " + std::to_string(n));
    ASSERT_FALSE(parse(std::string_view(bytes).substr(0, n), Framing::datagram).ok());
  }
  EXPECT_TRUE(parse(bytes, Framing::datagram).ok());
}

TEST(Truncation, Table) {
  const std::string full = invite("hello");
  struct Row {
    std::string_view what;
    std::size_t cut_at;
    Errc error;
  };
  const Row rows[] = {
      {"inside the start line", 10, Errc::bad_start_line},
      {"inside the headers", full.find("Call-ID") + 4, Errc::bad_header},
      {"before the empty line", full.find("\r\n\r\n") + 2, Errc::bad_header},
      {"inside the body", full.size() - 2, Errc::bad_content_length},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.what));
    expect_error(parse(std::string_view(full).substr(0, row.cut_at), Framing::datagram), row.error);
  }
}

// ---------------------------------------------------------------------------
// Line endings

TEST(LineEndings, BareLfAccepted) {
  Lines h = with(base_headers(), {"Subject: folded", " onto two lines"});
  h[7] = "Content-Length: 5";  // replaces Content-Length: 0
  std::string bytes = build(kInviteLine, h, "hello", "\n");
  for (auto framing : {Framing::datagram, Framing::stream}) {
    auto r = parse(bytes, framing);
    if (!r.ok()) {
      ADD_FAILURE() << "rejected: " << r.error().detail;
      continue;
    }
    EXPECT_EQ(r->method, "INVITE");
    EXPECT_EQ(r->request_uri, "sip:bob@biloxi.example.com");
    EXPECT_EQ(r->value(HeaderId::CallId), "a84b4c76e66710@pc33.atlanta.example.com");
    EXPECT_EQ(r->value(HeaderId::Subject), "folded\n onto two lines");
    EXPECT_EQ(r->body, "hello");
    for (const auto& hdr : r->headers)
      EXPECT_EQ(hdr.value.find('\r'), std::string_view::npos) << hdr.name;
  }
}

TEST(LineEndings, MixedCrlfAndLfAccepted) {
  std::string bytes = std::string(kInviteLine) + "\r\n";
  bool crlf = false;
  for (const auto& h : base_headers()) {
    bytes += h + (crlf ? "\r\n" : "\n");
    crlf = !crlf;
  }
  bytes += "\n";
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  EXPECT_EQ(r->headers.size(), base_headers().size());
  EXPECT_EQ(r->value(HeaderId::MaxForwards), "70");
  EXPECT_EQ(r->value(HeaderId::To), "Bob <sip:bob@biloxi.example.com>");
}

TEST(LineEndings, BareCrRejected) {
  std::string bytes = build(kInviteLine, base_headers(), "", "\r");
  ASSERT_FALSE(parse(bytes, Framing::datagram).ok());
}

// ---------------------------------------------------------------------------
// salvage: what a 400 can still copy from a message that failed to parse

TEST(Salvage, CopiesTheHeadersA400Needs) {
  Lines h = without(base_headers(), {"Content-Length"});
  h.push_back("Content-Length: -999");  // why parse() fails
  h.insert(h.begin(), "v: SIP/2.0/UDP second.example.com;branch=z9hG4bK2");
  std::string bytes = build(kInviteLine, h, "v=0\r\nVia: SIP/2.0/UDP body.example.com\r\n");
  ASSERT_FALSE(parse(bytes, Framing::datagram).ok());
  auto s = sw::sip::salvage(bytes);
  EXPECT_TRUE(s.is_request);
  EXPECT_EQ(s.method, "INVITE");
  EXPECT_TRUE(s.has_via());
  using Pair = std::pair<HeaderId, std::string_view>;
  const std::vector<Pair> want = {
      {HeaderId::Via, "SIP/2.0/UDP second.example.com;branch=z9hG4bK2"},
      {HeaderId::Via, "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"},
      {HeaderId::To, "Bob <sip:bob@biloxi.example.com>"},
      {HeaderId::From, "Alice <sip:alice@atlanta.example.com>;tag=1928301774"},
      {HeaderId::CallId, "a84b4c76e66710@pc33.atlanta.example.com"},
      {HeaderId::CSeq, "314159 INVITE"},
  };
  EXPECT_EQ(s.headers, want);  // in message order, nothing from the body
}

TEST(Salvage, NothingToAnswer) {
  struct Row {
    std::string_view what;
    std::string bytes;
  };
  const Row rows[] = {
      {"response", build("SIP/2.0 200 OK", base_headers())},
      {"lower-case response", build("sip/2.0 200 OK", base_headers())},
      {"garbage", std::string("\x16\x03\x01\x02\x00", 5)},
      {"empty", ""},
      {"method is not a token",
       build("IN(VITE sip:bob@biloxi.example.com SIP/2.0", base_headers())},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.what));
    auto s = sw::sip::salvage(row.bytes);
    EXPECT_FALSE(s.is_request);
    EXPECT_TRUE(s.headers.empty());
    EXPECT_FALSE(s.has_via());
  }
}

TEST(Salvage, AckIsReportedSoTheCallerCanStaySilent) {
  std::string bytes = build("ACK sip:bob@biloxi.example.com SIP/2.0", base_headers("ACK"), "junk");
  auto s = sw::sip::salvage(bytes);
  EXPECT_TRUE(s.is_request);
  EXPECT_EQ(s.method, "ACK");
}

TEST(Salvage, SkipsOversizedLinesAndCapsTheCount) {
  Lines h = base_headers();
  h.insert(h.begin(), "Via: SIP/2.0/UDP " + std::string(200, 'h') + ";branch=z9hG4bKbig");
  ParseLimits limits;
  limits.max_line_bytes = 100;
  std::string bytes = build(kInviteLine, h);  // salvage returns views into it
  auto s = sw::sip::salvage(bytes, limits);
  ASSERT_TRUE(s.is_request);
  ASSERT_FALSE(s.headers.empty());
  EXPECT_EQ(s.headers.front().second,
            "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds");

  Lines flood = base_headers();
  for (int i = 0; i < 100; ++i)
    flood.push_back("Via: SIP/2.0/UDP h" + std::to_string(i) + ".example.com");
  std::string flood_bytes = build(kInviteLine, flood);
  auto capped = sw::sip::salvage(flood_bytes);
  EXPECT_LE(capped.headers.size(), 32u);
  EXPECT_GE(capped.headers.size(), 5u);
}

// RFC 3261 8.2.6.2: the 400's Via must equal the request's. A folded Via value
// has to be copied whole, not cut at the first line break.
TEST(Salvage, FoldedViaCopiedWhole) {
  Lines h = without(base_headers(), {"Via", "Content-Length"});
  h.insert(h.begin(), {"Via: SIP/2.0/UDP", " pc33.atlanta.example.com;branch=z9hG4bK776asdhds"});
  h.push_back("Content-Length: five");
  std::string bytes = build(kInviteLine, h);
  ASSERT_FALSE(parse(bytes, Framing::datagram).ok());
  auto s = sw::sip::salvage(bytes);
  ASSERT_TRUE(s.has_via());
  EXPECT_EQ(s.headers.front().second,
            "SIP/2.0/UDP\r\n pc33.atlanta.example.com;branch=z9hG4bK776asdhds");
}

// ---------------------------------------------------------------------------
// Views and offsets

TEST(Views, OffsetsPointIntoTheCallersBuffer) {
  std::string bytes = invite("hello");
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  const Message& m = *r;
  EXPECT_EQ(m.raw.data(), bytes.data());
  EXPECT_EQ(m.raw.size(), bytes.size());
  EXPECT_EQ(m.offset_of(m.method), 0u);
  EXPECT_EQ(m.offset_of(m.request_uri), 7u);
  Lines lines = base_headers();
  lines.back() = "Content-Length: 5";
  ASSERT_EQ(m.headers.size(), lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    const auto& h = m.headers[i];
    EXPECT_EQ(m.raw.substr(h.begin, h.end - h.begin), lines[i] + "\r\n");
    EXPECT_EQ(m.offset_of(h.name), h.begin);
    EXPECT_EQ(bytes.substr(m.offset_of(h.value), h.value.size()), h.value);
  }
  EXPECT_EQ(m.raw.substr(m.headers_end, 2), "\r\n");
  EXPECT_EQ(m.offset_of(m.body), m.headers_end + 2u);
  EXPECT_EQ(m.first(HeaderId::Route), nullptr);
  EXPECT_EQ(m.value(HeaderId::Route), "");
  EXPECT_EQ(m.count(HeaderId::Via), 1u);
}

}  // namespace
