// RFC 4475 torture messages (tests/data/torture/*.sip) run through the parser.
// tests/data/torture/EXPECTED says, per message, whether the parser must accept it
// and which error it must report otherwise; the spot checks below then look inside
// the accepted messages, because "parses" alone would pass a parser that accepts
// everything.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/sip/message.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"

namespace {

using sw::Errc;
using sw::sip::for_each_list_item;
using sw::sip::Framing;
using sw::sip::HeaderId;
using sw::sip::Message;
using sw::sip::parse;
using sw::sip::parse_name_addr;
using sw::sip::parse_uri;
using sw::sip::parse_via;

const std::filesystem::path kTortureDir = std::filesystem::path(SIPWITNESS_TEST_DATA) / "torture";

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::optional<Errc> errc_from_name(std::string_view name) {
  static const std::map<std::string_view, Errc> kNames = {
      {"incomplete", Errc::incomplete},
      {"too_large", Errc::too_large},
      {"too_many_headers", Errc::too_many_headers},
      {"line_too_long", Errc::line_too_long},
      {"bad_start_line", Errc::bad_start_line},
      {"bad_version", Errc::bad_version},
      {"bad_header", Errc::bad_header},
      {"duplicate_header", Errc::duplicate_header},
      {"missing_header", Errc::missing_header},
      {"bad_content_length", Errc::bad_content_length},
      {"bad_value", Errc::bad_value},
      {"bad_uri", Errc::bad_uri},
      {"bad_via", Errc::bad_via},
      {"cseq_mismatch", Errc::cseq_mismatch},
  };
  auto it = kNames.find(name);
  if (it == kNames.end()) return std::nullopt;
  return it->second;
}

struct Case {
  std::string name;
  bool valid = false;
  std::optional<Errc> errc;
  std::string manifest_line;  // for failure messages
};

// Reads EXPECTED. A malformed line becomes a case with an empty name so the
// manifest test below reports it instead of it silently vanishing.
std::vector<Case> load_manifest() {
  std::vector<Case> cases;
  std::ifstream in(kTortureDir / "EXPECTED");
  std::string line;
  while (std::getline(in, line)) {
    std::string body = line.substr(0, line.find('#'));
    std::istringstream fields(body);
    std::string name, verdict, errc;
    if (!(fields >> name)) continue;  // blank or comment-only
    fields >> verdict >> errc;
    Case c{name, verdict == "valid", std::nullopt, line};
    if (verdict != "valid" && verdict != "invalid") c.name.clear();
    if (!errc.empty()) {
      c.errc = errc_from_name(errc);
      if (!c.errc || c.valid) c.name.clear();
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string repeat(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

// Readable test parameter names in failure output instead of a byte dump.
void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

std::vector<Case> valid_cases() {
  auto cases = load_manifest();
  std::erase_if(cases, [](const Case& c) { return !c.valid; });
  return cases;
}

std::string load(std::string_view name) {
  return read_file(kTortureDir / (std::string(name) + ".sip"));
}

// Every Via value in the message, split at commas.
std::vector<std::string_view> via_values(const Message& m) {
  std::vector<std::string_view> out;
  for (const auto& h : m.headers) {
    if (h.id != HeaderId::Via) continue;
    for_each_list_item(h.value, [&](std::string_view v) {
      out.push_back(v);
      return true;
    });
  }
  return out;
}

std::vector<const sw::sip::Header*> headers_named(const Message& m, HeaderId id) {
  std::vector<const sw::sip::Header*> out;
  for (const auto& h : m.headers)
    if (h.id == id) out.push_back(&h);
  return out;
}

// The header's name as written, without dereferencing a missing header.
std::string_view name_of(const Message& m, HeaderId id) {
  const auto* h = m.first(id);
  return h ? h->name : std::string_view("<absent>");
}

const sw::sip::Header* header_by_name(const Message& m, std::string_view name) {
  for (const auto& h : m.headers)
    if (sw::sip::iequals(h.name, name)) return &h;
  return nullptr;
}

// ---------------------------------------------------------------------------
// Manifest sanity: every file is classified, every classification has a file.

TEST(TortureManifest, ListsEveryMessageExactlyOnce) {
  auto cases = load_manifest();
  ASSERT_GE(cases.size(), 45u) << "EXPECTED missing or truncated";
  std::set<std::string> listed;
  for (const auto& c : cases) {
    EXPECT_FALSE(c.name.empty()) << "malformed manifest line: " << c.manifest_line;
    EXPECT_TRUE(listed.insert(c.name).second) << "listed twice: " << c.name;
    EXPECT_TRUE(std::filesystem::exists(kTortureDir / (c.name + ".sip")))
        << "no file for " << c.name;
  }
  for (const auto& entry : std::filesystem::directory_iterator(kTortureDir)) {
    if (entry.path().extension() != ".sip") continue;
    EXPECT_TRUE(listed.count(entry.path().stem().string())) << "not in EXPECTED: " << entry.path();
  }
}

TEST(TortureManifest, FilesUseCrlfLineEndings) {
  // A retyping slip that leaves a bare LF would test the LF tolerance instead of
  // the RFC message. Bodies are excluded: mpart01 carries binary with 0x0A bytes.
  for (const auto& c : load_manifest()) {
    SCOPED_TRACE(c.name);
    std::string bytes = load(c.name);
    auto header_end = bytes.find("\r\n\r\n");
    ASSERT_NE(header_end, std::string::npos);
    for (std::size_t i = 0; i < header_end; ++i) {
      if (bytes[i] == '\n') {
        ASSERT_EQ(bytes[i - 1], '\r') << "bare LF at offset " << i;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Every message against its manifest verdict.

class Torture : public ::testing::TestWithParam<Case> {};

TEST_P(Torture, DatagramVerdict) {
  const Case& c = GetParam();
  std::string bytes = load(c.name);
  ASSERT_FALSE(bytes.empty()) << c.name;
  auto r = parse(bytes, Framing::datagram);
  if (c.valid) {
    ASSERT_TRUE(r.ok()) << c.name << " rejected: " << r.error().detail;
    const Message& m = r.value();
    EXPECT_EQ(m.raw.data(), bytes.data());
    EXPECT_LE(m.raw.size(), bytes.size());
    EXPECT_EQ(m.body.data() + m.body.size(), m.raw.data() + m.raw.size())
        << "body must end the message";
    EXPECT_EQ(m.raw.substr(m.headers_end).substr(0, 2), "\r\n");
    EXPECT_FALSE(m.value(HeaderId::CallId).empty());
    if (m.is_request) {
      EXPECT_EQ(m.cseq_method, m.method);
    }
    // Content-Length, when present, is exactly the body length.
    if (const auto* cl = m.first(HeaderId::ContentLength)) {
      auto n = sw::sip::parse_uint<std::size_t>(cl->value);
      ASSERT_TRUE(n.has_value()) << cl->value;
      EXPECT_EQ(m.body.size(), *n);
    } else {
      EXPECT_EQ(m.raw.size(), bytes.size())
          << "without Content-Length the body runs to the datagram end";
    }
    // Each header line lies inside the message and ends with its line break.
    for (const auto& h : m.headers) {
      ASSERT_LT(h.begin, h.end);
      ASSERT_LE(h.end, m.headers_end);
      EXPECT_EQ(m.raw[h.end - 1], '\n');
      EXPECT_EQ(m.raw.substr(h.begin, h.name.size()), h.name);
    }
    // A valid message's Via values must all be usable for response routing.
    auto vias = via_values(m);
    EXPECT_FALSE(vias.empty());
    for (auto v : vias) EXPECT_TRUE(parse_via(v).ok()) << "Via: " << v;
  } else {
    ASSERT_FALSE(r.ok()) << c.name << " accepted, RFC 4475 says reject (" << c.manifest_line << ")";
    EXPECT_FALSE(r.error().detail.empty());
    if (c.errc) {
      EXPECT_EQ(r.error().code, *c.errc) << c.name << ": got '" << r.error().detail << "'";
    }
  }
}

// Valid messages with a Content-Length must also frame and parse on a stream, and
// both transports must agree on where the message ends.
class TortureStream : public ::testing::TestWithParam<Case> {};

TEST_P(TortureStream, AgreesWithDatagram) {
  const Case& c = GetParam();
  std::string bytes = load(c.name);
  auto dgram = parse(bytes, Framing::datagram);
  ASSERT_TRUE(dgram.ok()) << dgram.error().detail;
  if (!dgram->first(HeaderId::ContentLength)) {
    // inv2543: RFC 3261 18.3 makes Content-Length mandatory on streams.
    auto framed = sw::sip::frame_stream(bytes);
    ASSERT_FALSE(framed.ok());
    EXPECT_EQ(framed.error().code, Errc::bad_content_length);
    auto s = parse(bytes, Framing::stream);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, Errc::bad_content_length);
    return;
  }
  auto framed = sw::sip::frame_stream(bytes);
  ASSERT_TRUE(framed.ok()) << framed.error().detail;
  EXPECT_EQ(*framed, dgram->raw.size());
  auto s = parse(std::string_view(bytes).substr(0, *framed), Framing::stream);
  ASSERT_TRUE(s.ok()) << s.error().detail;
  EXPECT_EQ(s->raw, dgram->raw);
  EXPECT_EQ(s->headers.size(), dgram->headers.size());
  // One octet short is not a message yet.
  auto short_by_one = sw::sip::frame_stream(std::string_view(bytes).substr(0, *framed - 1));
  ASSERT_FALSE(short_by_one.ok());
  EXPECT_EQ(short_by_one.error().code, Errc::incomplete);
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string n = info.param.name;
  std::replace_if(
      n.begin(), n.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); },
      '_');
  return n.empty() ? "malformed_" + std::to_string(info.index) : n;
}

INSTANTIATE_TEST_SUITE_P(Rfc4475, Torture, ::testing::ValuesIn(load_manifest()), case_name);
INSTANTIATE_TEST_SUITE_P(Rfc4475, TortureStream, ::testing::ValuesIn(valid_cases()), case_name);

// ---------------------------------------------------------------------------
// Spot checks: the parts of each message the RFC calls out.

// A corpus message and its parse. Message holds views into the bytes, so the two
// live together and the pair is neither copied nor moved.
struct Parsed {
  explicit Parsed(std::string_view name) : bytes(load(name)) {
    auto r = parse(bytes, Framing::datagram);
    ok = r.ok();
    EXPECT_TRUE(ok) << name << ": " << (ok ? "" : r.error().detail);
    if (ok) m = std::move(r.value());
  }
  Parsed(const Parsed&) = delete;
  Parsed& operator=(const Parsed&) = delete;

  std::string bytes;
  bool ok = false;
  Message m;
};

TEST(TortureSpot, WsinvShortTortuousInvite) {
  std::string bytes = load("wsinv");
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  const Message& m = *r;
  EXPECT_TRUE(m.is_request);
  EXPECT_EQ(m.method, "INVITE");
  EXPECT_EQ(m.request_uri, "sip:vivekg@chair-dnrc.example.com;unknownparam");
  EXPECT_EQ(m.value(HeaderId::CallId), "wsinv.ndaksdj@192.0.2.1");
  EXPECT_EQ(m.cseq_number, 9u);  // "0009" folded onto "  INVITE"
  EXPECT_EQ(m.cseq_method, "INVITE");
  EXPECT_EQ(m.value(HeaderId::MaxForwards), "0068");
  EXPECT_EQ(m.headers.size(), 14u);
  EXPECT_EQ(m.body.size(), 150u);
  EXPECT_TRUE(m.body.starts_with("v=0\r\n"));

  // Header names as written, mapped case-insensitively and through compact forms.
  EXPECT_EQ(name_of(m, HeaderId::To), "TO");
  EXPECT_EQ(name_of(m, HeaderId::From), "from");
  EXPECT_EQ(name_of(m, HeaderId::ContentLength), "Content-Length");  // "Content-Length   :"
  EXPECT_EQ(name_of(m, HeaderId::Subject), "s");
  EXPECT_EQ(m.value(HeaderId::Subject), "");  // empty subject
  EXPECT_EQ(name_of(m, HeaderId::Contact), "m");

  // Folded values keep their continuation inside the view.
  const auto* nf = header_by_name(m, "NewFangledHeader");
  ASSERT_NE(nf, nullptr);
  EXPECT_EQ(nf->id, HeaderId::Other);
  EXPECT_EQ(nf->value, "newfangled value\r\n continued newfangled value");
  const auto* unusual = header_by_name(m, "UnknownHeaderWithUnusualValue");
  ASSERT_NE(unusual, nullptr);
  EXPECT_EQ(unusual->value, ";;,,;;,;");

  // Two Via header lines, three Via values.
  EXPECT_EQ(m.count(HeaderId::Via), 2u);
  auto vias = via_values(m);
  ASSERT_EQ(vias.size(), 3u);
  struct Want {
    std::string_view transport, host, branch;
  };
  const Want want[] = {{"UDP", "192.0.2.2", "390skdjuw"},
                       {"TCP", "spindle.example.com", "z9hG4bK9ikj8"},
                       {"UDP", "192.168.255.111", "z9hG4bK30239"}};
  for (std::size_t i = 0; i < 3; ++i) {
    SCOPED_TRACE(vias[i]);
    auto v = parse_via(vias[i]);
    if (!v.ok()) {
      ADD_FAILURE() << "rejected: " << v.error().detail;
      continue;
    }
    EXPECT_EQ(v->transport, want[i].transport);
    EXPECT_EQ(v->host, want[i].host);
    EXPECT_EQ(v->branch, want[i].branch);
  }

  EXPECT_EQ(sw::sip::tag_of(m.value(HeaderId::To)), "1918181833n");
  EXPECT_EQ(sw::sip::tag_of(m.value(HeaderId::From)), "98asjd8");
  auto from = parse_name_addr(m.value(HeaderId::From));
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->display, R"("J Rosenberg \\\"")");
  EXPECT_EQ(from->uri.user, "jdrosen");

  auto contact = parse_name_addr(m.value(HeaderId::Contact));
  ASSERT_TRUE(contact.ok()) << contact.error().detail;
  EXPECT_EQ(contact->display, R"("Quoted string \"\"")");
  EXPECT_EQ(contact->uri.host, "example.com");
  EXPECT_EQ(sw::sip::find_param(contact->params, "newparam"), "newvalue");
  EXPECT_EQ(sw::sip::find_param(contact->params, "secondparam"), "");
  EXPECT_EQ(sw::sip::find_param(contact->params, "q"), "0.33");

  auto route = parse_name_addr(m.value(HeaderId::Route));
  ASSERT_TRUE(route.ok()) << route.error().detail;
  EXPECT_TRUE(route->uri.lr());
  EXPECT_EQ(route->uri.param("unknownwith"), "value");
}

TEST(TortureSpot, IntmethUnusualCharacters) {
  std::string bytes = load("intmeth");
  auto r = parse(bytes, Framing::datagram);
  ASSERT_TRUE(r.ok()) << r.error().detail;
  const Message& m = *r;
  EXPECT_EQ(m.method, "!interesting-Method0123456789_*+`.%indeed'~");
  EXPECT_EQ(m.cseq_method, m.method);
  EXPECT_EQ(m.cseq_number, 139122385u);
  EXPECT_EQ(m.value(HeaderId::CallId), R"(intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{)");
  EXPECT_EQ(m.value(HeaderId::MaxForwards), "255");
  // The quoted display name carries raw BEL, NUL and DEL octets.
  auto to = m.value(HeaderId::To);
  EXPECT_NE(to.find(std::string_view("NUL:\\\0 ", 7)), std::string_view::npos);
  EXPECT_NE(to.find('\x07'), std::string_view::npos);
  EXPECT_NE(to.find('\x7f'), std::string_view::npos);
  const auto* ext = header_by_name(m, "extensionHeader-!.%*+_`'~");
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(ext->value, "\xEF\xBB\xBF\xE5\xA4\xA7\xE5\x81\x9C\xE9\x9B\xBB");

  auto ruri = parse_uri(m.request_uri);
  ASSERT_TRUE(ruri.ok()) << ruri.error().detail;
  EXPECT_EQ(ruri->user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
  EXPECT_EQ(ruri->password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
  EXPECT_EQ(ruri->host, "example.com");
  EXPECT_EQ(ruri->headers, "");
}

TEST(TortureSpot, Esc01EscapesStayEscaped) {
  Parsed p("esc01");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.method, "INVITE");
  EXPECT_EQ(m.value(HeaderId::CallId), "esc01.239409asdfakjkn23onasd0-3234");  // compact "i"
  EXPECT_EQ(name_of(m, HeaderId::ContentType), "C");  // compact, upper case
  auto ruri = parse_uri(m.request_uri);
  ASSERT_TRUE(ruri.ok());
  EXPECT_EQ(ruri->user, "sips%3Auser%40example.com");
  EXPECT_EQ(ruri->host, "example.net");
  auto contact =
      parse_name_addr(m.value(HeaderId::Contact));  // value was folded onto the next line
  ASSERT_TRUE(contact.ok()) << contact.error().detail;
  EXPECT_EQ(contact->uri.user, "cal%6Cer");
  EXPECT_EQ(contact->uri.param("%6C%72"), "");
  EXPECT_EQ(contact->uri.param("n%61me"), "v%61lue%25%34%31");
  EXPECT_EQ(m.body.size(), 150u);
}

TEST(TortureSpot, EscnullTwoContactsAndCompactLength) {
  Parsed p("escnull");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.method, "REGISTER");
  auto contacts = headers_named(m, HeaderId::Contact);
  ASSERT_EQ(contacts.size(), 2u);
  EXPECT_EQ(parse_name_addr(contacts[0]->value)->uri.user, "%00");
  EXPECT_EQ(parse_name_addr(contacts[1]->value)->uri.user, "%00%00");
  EXPECT_EQ(name_of(m, HeaderId::ContentLength), "L");  // "L:0", no space
  EXPECT_EQ(m.value(HeaderId::ContentLength), "0");
  EXPECT_EQ(parse_name_addr(m.value(HeaderId::To))->uri.user, "null-%00-null");
}

TEST(TortureSpot, Esc02PercentIsNotAnEscapeThere) {
  Parsed p("esc02");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.method, "RE%47IST%45R");  // not REGISTER
  EXPECT_EQ(m.cseq_method, "RE%47IST%45R");
  EXPECT_EQ(m.count(HeaderId::Contact), 2u);  // C%6Fntact is not Contact
  const auto* fake = header_by_name(m, "C%6Fntact");
  ASSERT_NE(fake, nullptr);
  EXPECT_EQ(fake->id, HeaderId::Other);
  EXPECT_EQ(parse_via(m.value(HeaderId::Via))->branch, "z9hG4bK209%fzsnel234");
  EXPECT_EQ(parse_name_addr(m.value(HeaderId::To))->display, "\"%Z%45\"");
}

TEST(TortureSpot, LwsdispDisplayNameGluedToAngle) {
  Parsed p("lwsdisp");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  auto from = parse_name_addr(m.value(HeaderId::From));
  ASSERT_TRUE(from.ok());
  EXPECT_EQ(from->display, "caller");
  EXPECT_EQ(from->uri_text, "sip:caller@example.com");
  EXPECT_EQ(sw::sip::tag_of(m.value(HeaderId::From)), "323");
}

TEST(TortureSpot, LongreqLongValuesAndManyVias) {
  Parsed p("longreq");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.value(HeaderId::CallId), "longreq.one" + repeat("really", 20) + "longcallid");
  // 34 Via header lines spelt Via, v, V, ViA, "V :", "Via  :", ...
  EXPECT_EQ(m.count(HeaderId::Via), 34u);
  auto vias = via_values(m);
  ASSERT_EQ(vias.size(), 34u);
  EXPECT_EQ(parse_via(vias[0])->host, "sip33.example.com");
  EXPECT_EQ(parse_via(vias[32])->host, "sip1.example.com");
  auto last = parse_via(vias[33]);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->received, "192.0.2.5");
  EXPECT_EQ(last->branch.size(),
            std::string_view("very").size() + 50 * 4 + std::string_view("branchvalue").size());
  auto to = parse_name_addr(m.value(HeaderId::To));
  ASSERT_TRUE(to.ok()) << to.error().detail;
  EXPECT_EQ(to->uri.port, 6000);
  EXPECT_EQ(to->uri.param("longparam" + repeat("name", 25)), "shortvalue");
  auto tag = sw::sip::tag_of(m.value(HeaderId::From));
  EXPECT_EQ(tag.size(), 2u + 150u + 3u);
  EXPECT_TRUE(tag.starts_with("12982") && tag.ends_with("982424"));
  EXPECT_EQ(m.body.size(), 150u);
}

TEST(TortureSpot, DblreqDatagramTakesOnlyTheFirstRequest) {
  Parsed p("dblreq");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  const std::string& bytes = p.bytes;
  EXPECT_EQ(m.method, "REGISTER");
  EXPECT_EQ(m.value(HeaderId::CallId), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");  // compact "I"
  EXPECT_TRUE(m.body.empty());
  EXPECT_EQ(m.raw.size(), m.headers_end + 2u);  // ends at the empty line
  EXPECT_LT(m.raw.size(), bytes.size());
  EXPECT_EQ(m.raw.find("INVITE"), std::string_view::npos)
      << "the trailing INVITE must not be part of raw";
  EXPECT_TRUE(std::string_view(bytes)
                  .substr(m.raw.size())
                  .starts_with("INVITE sip:joe@example.com SIP/2.0\r\n"));
}

TEST(TortureSpot, SemiuriSemicolonInUserPart) {
  Parsed p("semiuri");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  auto ruri = parse_uri(m.request_uri);
  ASSERT_TRUE(ruri.ok());
  EXPECT_EQ(ruri->user, "user;par=u%40example.net");
  EXPECT_EQ(ruri->host, "example.com");
  EXPECT_EQ(ruri->params, "");
  const auto* accept = header_by_name(m, "Accept");
  ASSERT_NE(accept, nullptr);
  EXPECT_TRUE(accept->value.ends_with("message/sip, message/sipfrag"));  // third folded line
  std::vector<std::string_view> types;
  for_each_list_item(accept->value, [&](std::string_view t) {
    types.push_back(t);
    return true;
  });
  EXPECT_EQ(types, (std::vector<std::string_view>{"application/sdp", "application/pkcs7-mime",
                                                  "multipart/mixed", "multipart/signed",
                                                  "message/sip", "message/sipfrag"}));
}

TEST(TortureSpot, TransportsUnusualViaTransports) {
  Parsed p("transports");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.value(HeaderId::CallId),
            "transports.kijh4akdnaqjkwendsasfdj");  // two spaces after the colon
  auto vias = via_values(m);
  ASSERT_EQ(vias.size(), 5u);
  const std::string_view want[] = {"UDP", "SCTP", "TLS", "UNKNOWN", "TCP"};
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(parse_via(vias[i])->transport, want[i]);
}

TEST(TortureSpot, Mpart01BinaryBodyFramedByLength) {
  Parsed p("mpart01");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.method, "MESSAGE");
  EXPECT_EQ(m.body.size(), 553u);
  EXPECT_NE(m.body.find('\0'), std::string_view::npos) << "the DER part contains NUL octets";
  EXPECT_TRUE(m.body.starts_with("--7a9cbec02ceef655\r\n"));
  EXPECT_TRUE(m.body.ends_with("\r\n--7a9cbec02ceef655--\r\n"));
  EXPECT_EQ(m.value(HeaderId::Identity).size(), 172u);
  auto via = parse_via(m.value(HeaderId::Via));
  ASSERT_TRUE(via.ok());
  EXPECT_TRUE(via->has_rport);
  EXPECT_EQ(via->rport, "");
  EXPECT_EQ(via->port, 5070);
}

TEST(TortureSpot, UnreasonUtf8ReasonPhrase) {
  Parsed p("unreason");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_FALSE(m.is_request);
  EXPECT_EQ(m.status, 200);
  EXPECT_TRUE(m.reason.starts_with("= 2**3 * 5**2 \xD0\xBD\xD0\xBE "));
  EXPECT_TRUE(m.reason.ends_with("\xD0\xBF\xD1\x80\xD0\xBE\xD1\x81\xD1\x82\xD0\xBE\xD0\xB5"));
  EXPECT_EQ(m.cseq_method, "INVITE");
  EXPECT_EQ(m.body.size(), 154u);
}

TEST(TortureSpot, NoreasonEmptyReasonPhrase) {
  Parsed p("noreason");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.status, 100);
  EXPECT_EQ(m.reason, "");
}

TEST(TortureSpot, EscruriHeadersVisibleToTheProxyLayer) {
  // Accepted by the parser; the proxy must see the escaped headers so it can
  // reject or strip them (RFC 4475 3.1.2.11).
  Parsed p("escruri");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  auto ruri = parse_uri(m.request_uri);
  ASSERT_TRUE(ruri.ok());
  EXPECT_EQ(ruri->host, "example.com");
  EXPECT_EQ(ruri->headers, "Route=%3Csip:example.com%3E");
}

TEST(TortureSpot, RegbadctAndRegescrtContactUriHeaders) {
  Parsed bad_p("regbadct");
  ASSERT_TRUE(bad_p.ok);
  const Message& bad = bad_p.m;
  auto c1 = parse_name_addr(bad.value(HeaderId::Contact));
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1->uri.headers, "Route=%3Csip:sip.example.com%3E");
  EXPECT_EQ(c1->params, "");

  Parsed good_p("regescrt");
  ASSERT_TRUE(good_p.ok);
  const Message& good = good_p.m;
  EXPECT_EQ(name_of(good, HeaderId::Contact), "M");
  auto c2 = parse_name_addr(good.value(HeaderId::Contact));
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->uri.headers, "Route=%3Csip:sip.example.com%3E");
}

TEST(TortureSpot, UnknownRequestUriSchemesAreOpaque) {
  Parsed unkscm_p("unkscm");
  ASSERT_TRUE(unkscm_p.ok);
  const Message& unkscm = unkscm_p.m;
  auto u1 = parse_uri(unkscm.request_uri);
  ASSERT_TRUE(u1.ok());
  EXPECT_EQ(u1->scheme, "nobodyKnowsThisScheme");
  EXPECT_FALSE(u1->is_sip());

  Parsed novelsc_p("novelsc");
  ASSERT_TRUE(novelsc_p.ok);
  const Message& novelsc = novelsc_p.m;
  auto u2 = parse_uri(novelsc.request_uri);
  ASSERT_TRUE(u2.ok());
  EXPECT_EQ(u2->scheme, "soap.beep");
  EXPECT_FALSE(u2->is_sip());
}

TEST(TortureSpot, Unksm2NonSipSchemesInNameAddrs) {
  Parsed p("unksm2");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  auto to = parse_name_addr(m.value(HeaderId::To));
  ASSERT_TRUE(to.ok());
  EXPECT_EQ(to->uri.scheme, "isbn");
  EXPECT_EQ(sw::sip::tag_of(m.value(HeaderId::From)), "3234233");
  auto contact = parse_name_addr(m.value(HeaderId::Contact));
  ASSERT_TRUE(contact.ok());
  EXPECT_EQ(contact->uri.scheme, "name");
}

TEST(TortureSpot, CparamHeaderVersusUriParameters) {
  Parsed p1("cparam01");
  auto c1 = parse_name_addr(p1.m.value(HeaderId::Contact));
  ASSERT_TRUE(c1.ok());
  EXPECT_EQ(c1->uri.params, "");  // addr-spec: the parameter belongs to the header
  EXPECT_EQ(c1->params, ";unknownparam");
  EXPECT_EQ(c1->uri.user, "+19725552222");

  Parsed p2("cparam02");
  auto c2 = parse_name_addr(p2.m.value(HeaderId::Contact));
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ(c2->uri.params, ";unknownparam");  // inside <>: a URI parameter
  EXPECT_EQ(c2->params, "");
}

TEST(TortureSpot, ZeromfMaxForwardsZeroParses) {
  Parsed p("zeromf");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.value(HeaderId::MaxForwards), "0");
}

TEST(TortureSpot, BcastSecondViaIsBroadcast) {
  Parsed p("bcast");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(m.status, 200);
  auto vias = via_values(m);
  ASSERT_EQ(vias.size(), 2u);
  EXPECT_EQ(parse_via(vias[1])->host, "255.255.255.255");
}

TEST(TortureSpot, BadbranchIsOnlyTheMagicCookie) {
  Parsed p("badbranch");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  EXPECT_EQ(parse_via(m.value(HeaderId::Via))->branch, sw::sip::kMagicCookie);
}

TEST(TortureSpot, Inv2543BodyRunsToDatagramEnd) {
  Parsed p("inv2543");
  ASSERT_TRUE(p.ok);
  const Message& m = p.m;
  const std::string& bytes = p.bytes;
  EXPECT_EQ(m.first(HeaderId::ContentLength), nullptr);
  EXPECT_EQ(m.first(HeaderId::MaxForwards), nullptr);
  EXPECT_EQ(sw::sip::tag_of(m.value(HeaderId::From)), "");
  EXPECT_EQ(parse_via(m.value(HeaderId::Via))->branch, "");
  EXPECT_EQ(m.raw.size(), bytes.size());
  EXPECT_TRUE(m.body.starts_with("v=0\r\n"));
  EXPECT_TRUE(m.body.ends_with("m=audio 49217 RTP/AVP 0\r\n"));
}

TEST(TortureSpot, BadaspecAndBaddateFromTagStillReadable) {
  Parsed badaspec("badaspec");
  Parsed baddate("baddate");
  EXPECT_EQ(sw::sip::tag_of(badaspec.m.value(HeaderId::From)), "433423");
  EXPECT_EQ(sw::sip::tag_of(baddate.m.value(HeaderId::From)), "2234923");
}

// Invalid messages on a stream: what the framing layer does before parse() runs.
TEST(TortureSpot, InvalidLengthsOnAStream) {
  // clerr: RFC 4475 3.1.2.2 says a stream receiver can only wait for more data.
  auto clerr = sw::sip::frame_stream(load("clerr"));
  ASSERT_FALSE(clerr.ok());
  EXPECT_EQ(clerr.error().code, Errc::incomplete);
  // ncl and mcl01: the framing is unrecoverable, so the connection must be closed.
  for (std::string_view name : {"ncl", "mcl01"}) {
    SCOPED_TRACE(name);
    auto r = sw::sip::frame_stream(load(name));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::bad_content_length);
  }
}

}  // namespace
