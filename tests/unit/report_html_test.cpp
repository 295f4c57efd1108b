#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "diag/capture/report.hpp"

// The HTML report (write_html): one self-contained page, every text escaped, a
// section per call carrying its verdicts, and a ladder diagram whose challenge
// and credential arrows stand out. Ladders are built by hand here; the e2e test
// renders a real analysis in Chromium.
namespace sw::capture {
namespace {

using diag::Confidence;
using diag::Verdict;
using diag::VerdictKind;
using namespace std::chrono_literals;

const TimePoint kT0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 21} + 10h;
const std::string kPhone = "192.0.2.10:5060";
const std::string kProxy = "198.51.100.1:5060";
const std::string kRegistrar = "203.0.113.5:5060";

LadderMessage request(std::string src, std::string dst, std::string label, std::string cseq, bool credentials = false,
                      std::string auth = "") {
  LadderMessage m;
  m.src = std::move(src);
  m.dst = std::move(dst);
  m.transport = "udp";
  m.label = std::move(label);
  m.is_request = true;
  m.cseq = std::move(cseq);
  m.credentials = credentials;
  m.auth = std::move(auth);
  return m;
}

LadderMessage response(std::string src, std::string dst, int status, std::string reason, std::string cseq,
                       std::string auth = "") {
  LadderMessage m;
  m.src = std::move(src);
  m.dst = std::move(dst);
  m.transport = "udp";
  m.label = std::to_string(status) + " " + reason;
  m.status = status;
  m.cseq = std::move(cseq);
  m.challenge = status == 401 || status == 407;
  m.auth = std::move(auth);
  return m;
}

Verdict verdict(VerdictKind kind, Confidence confidence, const std::string& call_id) {
  Verdict v;
  v.ts = kT0;
  v.call_id = call_id;
  v.method = "REGISTER";
  v.aor = "sip:1001@example.test";
  v.user = "1001";
  v.source = kPhone;
  v.verdict = kind;
  v.confidence = confidence;
  v.challenges = 1;
  v.final_status = 401;
  v.hint = std::string(diag::hint_for(kind));
  return v;
}

// REGISTER, 401, REGISTER with credentials, then `final_status`.
CallLadder register_call(const std::string& call_id, VerdictKind kind, Confidence confidence = Confidence::certain,
                         int final_status = 200) {
  CallLadder c;
  c.call_id = call_id;
  c.messages = {
      request(kPhone, kRegistrar, "REGISTER sip:example.test", "1 REGISTER"),
      response(kRegistrar, kPhone, 401, "Unauthorized", "1 REGISTER",
               "[WWW-Authenticate Digest realm=example.test algorithm=MD5 qop=auth]"),
      request(kPhone, kRegistrar, "REGISTER sip:example.test", "2 REGISTER", true,
              "[Authorization Digest username=1001 realm=pbx.local algorithm=MD5 qop=auth uri=sip:example.test]"),
      response(kRegistrar, kPhone, final_status, final_status == 200 ? "OK" : "Forbidden", "2 REGISTER"),
  };
  c.verdicts.push_back(verdict(kind, confidence, call_id));
  return c;
}

std::vector<InputSummary> one_text_input() {
  InputSummary in;
  in.file = "trace.txt";
  in.format = "text";
  in.outcome.stats.bytes = 2048;
  in.outcome.stats.sip_messages = 4;
  return {in};
}

std::string render(const std::vector<CallLadder>& ladders, const std::vector<InputSummary>& inputs = one_text_input(),
                   const AnalysisStats& stats = {}) {
  std::ostringstream out;
  write_html(out, inputs, stats, ladders);
  return out.str();
}

std::size_t count(const std::string& haystack, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + needle.size())) ++n;
  return n;
}

// The markup of call section `number` (1-based), from its opening tag to its end.
std::string section(const std::string& html, std::size_t number) {
  auto id = "id=\"call-" + std::to_string(number) + "\"";
  auto at = html.find(id);
  if (at == std::string::npos) return {};
  auto begin = html.rfind("<section", at);
  auto end = html.find("</section>", at);
  return html.substr(begin, end - begin);
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Every '<' in the page opens (or closes) one of the elements the report writes:
// text that slipped through unescaped would show up as another tag or a stray '<'.
void expect_only_report_tags(const std::string& html) {
  static const std::set<std::string> allowed{
      "html", "head",  "meta",  "title", "style",   "body", "svg",  "defs",    "marker", "path", "header",
      "h1",   "h2",    "span",  "div",   "table",   "thead", "tbody", "tr",    "th",     "td",   "b",
      "i",    "small", "details", "summary", "ul",  "li",   "input", "nav",    "label",  "main", "section",
      "a",    "code",  "article", "dl",   "dt",     "dd",   "p",    "rect",    "line",   "text", "tspan",
      "g",    "footer"};
  for (auto at = html.find('<'); at != std::string::npos; at = html.find('<', at + 1)) {
    if (html.compare(at, 9, "<!DOCTYPE") == 0) continue;
    std::size_t i = at + 1;
    if (i < html.size() && html[i] == '/') ++i;
    std::size_t j = i;
    while (j < html.size() && std::isalnum(static_cast<unsigned char>(html[j]))) ++j;
    auto name = html.substr(i, j - i);
    EXPECT_TRUE(allowed.count(name)) << "unexpected '<' at " << at << ": " << html.substr(at, 60);
  }
}

TEST(ReportHtml, OneSelfContainedDocument) {
  auto html = render({register_call("a@host", VerdictKind::ok_after_challenge)});
  EXPECT_EQ(html.rfind("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">", 0), 0u);
  EXPECT_TRUE(html.ends_with("</body></html>\n"));
  EXPECT_EQ(count(html, "<html"), 1u);
  EXPECT_EQ(count(html, "<body>"), 1u);
  EXPECT_EQ(count(html, "</body>"), 1u);
  expect_only_report_tags(html);
  // Opens offline and runs nothing: no scripts, links, images, frames or imports.
  auto l = lower(html);
  for (const char* forbidden : {"http://", "https://", "<script", "<link", "<img", "<iframe", "<object", "<embed",
                                "@import", "src=", "javascript:"}) {
    SCOPED_TRACE(forbidden);
    EXPECT_EQ(l.find(forbidden), std::string::npos);
  }
  // CSS url() only names the page's own markers; links only jump inside the page.
  std::regex url(R"(url\(([^)]*)\))");
  for (std::sregex_iterator it(html.begin(), html.end(), url), end; it != end; ++it)
    EXPECT_EQ((*it)[1].str().rfind('#', 0), 0u) << (*it)[0];
  std::regex href(R"re(href="([^"]*)")re");
  for (std::sregex_iterator it(html.begin(), html.end(), href), end; it != end; ++it)
    EXPECT_EQ((*it)[1].str().rfind('#', 0), 0u) << (*it)[0];
}

TEST(ReportHtml, SectionPerCallWithIdAndVerdict) {
  auto both = register_call("two-flows@host", VerdictKind::realm_mismatch);
  both.verdicts.insert(both.verdicts.begin(), verdict(VerdictKind::ok, Confidence::certain, both.call_id));
  CallLadder dialog_only;
  dialog_only.call_id = "bye-only@host";
  dialog_only.messages = {request(kPhone, kRegistrar, "BYE sip:2000@example.test", "3 BYE")};
  auto html = render({register_call("first@host", VerdictKind::ok_after_challenge), both, dialog_only});

  EXPECT_EQ(count(html, "<section class=\"call"), 3u);
  EXPECT_EQ(count(html, "aria-label=\"Ladder diagram, "), 3u);
  auto first = section(html, 1);
  EXPECT_NE(first.find("data-verdict=\"ok_after_challenge\""), std::string::npos);
  EXPECT_NE(first.find("data-call-id=\"first@host\""), std::string::npos);
  EXPECT_NE(first.find("<code class=\"cid\">first@host</code>"), std::string::npos);
  EXPECT_NE(first.find("<span class=\"kind\">ok_after_challenge</span>"), std::string::npos);
  // Several flows in one Call-ID: every verdict name, so [data-verdict~=name] finds the call.
  auto second = section(html, 2);
  EXPECT_NE(second.find("data-verdict=\"ok realm_mismatch\""), std::string::npos);
  EXPECT_NE(second.find("<span class=\"kind\">ok</span>"), std::string::npos);
  EXPECT_NE(second.find("<span class=\"kind\">realm_mismatch</span>"), std::string::npos);
  auto third = section(html, 3);
  EXPECT_NE(third.find("data-verdict=\"none\""), std::string::npos);
  EXPECT_NE(third.find("No auth flow ended"), std::string::npos);
  // The table of contents links every call.
  for (int i = 1; i <= 3; ++i) EXPECT_NE(html.find("href=\"#call-" + std::to_string(i) + "\""), std::string::npos);
}

TEST(ReportHtml, VerdictColourAndConfidence) {
  struct Row {
    VerdictKind kind;
    const char* tone;
    const char* call_class;
  };
  const std::vector<Row> rows{
      {VerdictKind::ok, "good", "call pass"},
      {VerdictKind::ok_after_challenge, "good", "call pass"},
      {VerdictKind::wrong_password, "bad", "call fail"},
      {VerdictKind::realm_mismatch, "bad", "call fail"},
      {VerdictKind::username_mismatch, "bad", "call fail"},
      {VerdictKind::uri_mismatch, "bad", "call fail"},
      {VerdictKind::alg_rewrite, "bad", "call fail"},
      {VerdictKind::algorithm_unsupported, "bad", "call fail"},
      {VerdictKind::forbidden, "bad", "call fail"},
      {VerdictKind::nonce_expired, "warn", "call fail soft"},
      {VerdictKind::no_credentials, "warn", "call fail soft"},
      {VerdictKind::auth_loop, "warn", "call fail soft"},
      {VerdictKind::unanswered, "warn", "call fail soft"},
  };
  for (const auto& row : rows) {
    for (auto confidence : {Confidence::certain, Confidence::likely}) {
      std::string name(diag::to_string(row.kind));
      std::string conf(diag::to_string(confidence));
      SCOPED_TRACE(name + " " + conf);
      auto html = render({register_call("c@host", row.kind, confidence)});
      auto s = section(html, 1);
      EXPECT_EQ(s.rfind(std::string("<section class=\"") + row.call_class + "\"", 0), 0u) << s.substr(0, 80);
      EXPECT_NE(s.find(std::string("<article class=\"verdict ") + row.tone + " " + conf + "\">"), std::string::npos);
      EXPECT_NE(s.find("<span class=\"conf\">" + conf + "</span>"), std::string::npos);
      EXPECT_NE(s.find("data-verdict=\"" + name + "\""), std::string::npos);
      // The table of contents carries the same colour, and says "likely" in words.
      auto badge = std::string("<span class=\"badge ") + row.tone + (confidence == Confidence::likely ? " likely" : "") +
                   "\">" + name + (confidence == Confidence::likely ? " <small>likely</small>" : "") + "</span>";
      EXPECT_NE(html.find(badge), std::string::npos) << badge;
    }
  }
}

TEST(ReportHtml, HostileTextIsEscapedEverywhere) {
  const std::string evil = "<script>alert(\"x\")</script>&'\"><img src=x onerror=alert(1)>";
  const std::string escaped =
      "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;";
  CallLadder c;
  c.call_id = evil;
  auto m = request(evil, evil, evil, evil, true, evil);
  m.transport = evil;
  m.has_time = true;
  m.time = kT0;
  c.messages = {m, response(evil, "", 407, evil, evil, evil)};
  auto v = verdict(VerdictKind::realm_mismatch, Confidence::certain, evil);
  v.method = v.aor = v.user = v.source = v.hint = evil;
  v.evidence = {{evil, evil}, {"challenge_realm", evil}, {"offered_algorithms", std::vector<std::string>{evil}}};
  c.verdicts = {v};
  InputSummary in;
  in.file = in.format = evil;
  in.outcome.error = ReadError{evil, 7, evil};
  AnalysisStats stats;
  stats.parse_errors = {evil};

  auto html = render({c}, {in}, stats);
  expect_only_report_tags(html);
  EXPECT_EQ(lower(html).find("<script"), std::string::npos);
  EXPECT_EQ(html.find("\"><img"), std::string::npos);
  EXPECT_EQ(lower(html).find("<img"), std::string::npos);
  // The text itself survives, escaped: title, input table, parse errors, the
  // section's attribute and heading, the verdict card.
  EXPECT_GE(count(html, escaped), 10u);
  EXPECT_NE(html.find("data-call-id=\"" + escaped + "\""), std::string::npos);
  EXPECT_NE(html.find("<code class=\"cid\">" + escaped + "</code>"), std::string::npos);
  EXPECT_NE(html.find("<p class=\"hint\">" + escaped + "</p>"), std::string::npos);
}

TEST(ReportHtml, InvalidUtf8AndControlCharactersAreReplaced) {
  CallLadder c;
  c.call_id = std::string("a\xff\x01z\xC3\xA9\xE2\x82", 8) + std::string(1, '\0') + "end";
  c.messages = {request(kPhone, kRegistrar, "OPTIONS sip:x", "1 OPTIONS")};
  auto html = render({c});
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  // ff and 01 replaced, é (C3 A9) kept, a truncated sequence and NUL replaced.
  EXPECT_NE(html.find("a" + r + r + "z\xC3\xA9" + r + r + r + "end"), std::string::npos);
  EXPECT_EQ(html.find('\0'), std::string::npos);
  EXPECT_EQ(html.find('\x01'), std::string::npos);
}

TEST(ReportHtml, ChallengesAndCredentialsStandOut) {
  CallLadder c = register_call("hl@host", VerdictKind::forbidden, Confidence::certain, 403);
  c.messages.insert(c.messages.begin() + 1, response(kRegistrar, kPhone, 100, "Trying", "1 REGISTER"));
  c.messages.push_back(response(kRegistrar, kPhone, 407, "Proxy Authentication Required", "3 REGISTER",
                                "[Proxy-Authenticate Digest realm=example.test algorithm=SHA-256]"));
  c.messages.push_back(response(kRegistrar, kPhone, 200, "OK", "4 REGISTER"));
  auto s = section(render({c}), 1);
  EXPECT_EQ(count(s, "<g class=\"m chal\""), 2u);
  EXPECT_EQ(count(s, "<g class=\"m cred\""), 1u);
  EXPECT_EQ(count(s, "<g class=\"m req\""), 1u);
  EXPECT_EQ(count(s, "<g class=\"m prov\""), 1u);
  EXPECT_EQ(count(s, "<g class=\"m err\""), 1u);  // the 403
  EXPECT_EQ(count(s, "<g class=\"m okr\""), 1u);
  EXPECT_EQ(count(s, "<rect class=\"band chal\""), 2u);
  EXPECT_EQ(count(s, "<rect class=\"band cred\""), 1u);
  // The digest exchange in short is written under its arrow (wrapped to fit between the lifelines).
  std::string under_arrows;
  std::regex auth_text(R"re(<text class="au" x="\d+" y="44">(.*?)</text>)re");
  for (std::sregex_iterator it(s.begin(), s.end(), auth_text), end; it != end; ++it) under_arrows += (*it)[1].str() + "\n";
  EXPECT_EQ(count(under_arrows, "\n"), 3u);
  for (const char* part : {"[WWW-Authenticate Digest realm=example.test", "algorithm=MD5 qop=auth]",
                           "[Authorization Digest username=1001 realm=pbx.local", "uri=sip:example.test]",
                           "[Proxy-Authenticate Digest realm=example.test", "algorithm=SHA-256]"}) {
    SCOPED_TRACE(part);
    EXPECT_NE(under_arrows.find(part), std::string::npos) << under_arrows;
  }
  EXPECT_NE(s.find(">407 Proxy Authentication Required</text>"), std::string::npos);
}

// x1 and x2 of every straight arrow, in order.
std::vector<std::pair<int, int>> arrows(const std::string& svg) {
  std::vector<std::pair<int, int>> out;
  std::regex arrow(R"re(<path class="a" d="M(\d+) 26H(\d+)"/>)re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), arrow), end; it != end; ++it)
    out.emplace_back(std::stoi((*it)[1]), std::stoi((*it)[2]));
  return out;
}

TEST(ReportHtml, OneLifelinePerHostInFirstSeenOrder) {
  CallLadder c;
  c.call_id = "three-hosts@host";
  c.messages = {
      request(kPhone, kProxy, "INVITE sip:2000@example.test", "1 INVITE"),
      request(kProxy, kRegistrar, "INVITE sip:2000@example.test", "1 INVITE"),
      response(kRegistrar, kProxy, 180, "Ringing", "1 INVITE"),
      response(kProxy, kPhone, 180, "Ringing", "1 INVITE"),
      request(kProxy, kProxy, "OPTIONS sip:self", "7 OPTIONS"),
  };
  auto s = section(render({c}), 1);
  EXPECT_EQ(count(s, "<line class=\"life\""), 3u);
  auto phone = s.find(">" + kPhone + "<title>");
  auto proxy = s.find(">" + kProxy + "<title>");
  auto registrar = s.find(">" + kRegistrar + "<title>");
  ASSERT_NE(phone, std::string::npos);
  ASSERT_NE(proxy, std::string::npos);
  ASSERT_NE(registrar, std::string::npos);
  EXPECT_LT(phone, proxy);
  EXPECT_LT(proxy, registrar);
  auto a = arrows(s);
  ASSERT_EQ(a.size(), 4u);
  EXPECT_LT(a[0].first, a[0].second);   // phone -> proxy, rightwards
  EXPECT_EQ(a[0].second + 3, a[1].first);  // the proxy forwards from its own lifeline
  EXPECT_LT(a[1].first, a[1].second);
  EXPECT_GT(a[2].first, a[2].second);   // responses come back leftwards
  EXPECT_GT(a[3].first, a[3].second);
  EXPECT_EQ(a[3].second - 3, a[0].first);  // ending on the phone's lifeline
  EXPECT_NE(s.find(" 20h34v12h-30\"/>"), std::string::npos);  // a loop on its own lifeline
  EXPECT_NE(s.find("<text class=\"l side\""), std::string::npos);  // the message to itself
}

TEST(ReportHtml, UnknownAddressesSplitIntoClientAndServerSides) {
  CallLadder c;
  c.call_id = "no-addresses@host";
  c.messages = {request("", "", "REGISTER sip:example.test", "1 REGISTER"),
                response("", "", 401, "Unauthorized", "1 REGISTER")};
  auto s = section(render({c}), 1);
  EXPECT_EQ(count(s, "<line class=\"life\""), 2u);
  EXPECT_EQ(count(s, ">(unknown)</text>"), 2u);
  EXPECT_NE(s.find(">client side</text>"), std::string::npos);
  EXPECT_NE(s.find(">server side</text>"), std::string::npos);
  EXPECT_NE(s.find("<rect class=\"host unk\""), std::string::npos);
  auto a = arrows(s);
  ASSERT_EQ(a.size(), 2u);
  EXPECT_LT(a[0].first, a[0].second);
  EXPECT_GT(a[1].first, a[1].second);
}

TEST(ReportHtml, TimesAreOffsetsFromTheCallsFirstMessage) {
  auto c = register_call("timed@host", VerdictKind::ok_after_challenge);
  for (std::size_t i = 0; i < c.messages.size(); ++i) {
    c.messages[i].has_time = true;
    c.messages[i].time = kT0 + std::chrono::milliseconds(1250 * static_cast<int>(i));
  }
  auto untimed = register_call("untimed@host", VerdictKind::ok_after_challenge);
  auto html = render({c, untimed});
  auto s = section(html, 1);
  EXPECT_NE(s.find(">+0.000 s</text>"), std::string::npos);
  EXPECT_NE(s.find(">+1.250 s</text>"), std::string::npos);
  EXPECT_NE(s.find(">+3.750 s</text>"), std::string::npos);
  EXPECT_NE(s.find("from 2026-11-21 10:00:00.000 UTC"), std::string::npos);
  EXPECT_NE(html.find("capture from 2026-11-21 10:00:00.000 UTC to 2026-11-21 10:00:03.750 UTC"), std::string::npos);
  // Without timestamps, rows are numbered instead.
  auto u = section(html, 2);
  EXPECT_NE(u.find(">#1</text>"), std::string::npos);
  EXPECT_NE(u.find(">#4</text>"), std::string::npos);
  EXPECT_EQ(u.find(" s</text>"), std::string::npos);
  // The CSeq sits beside each arrow.
  EXPECT_NE(u.find("<text class=\"cs\" x=\"8\" y=\"31\">2 REGISTER</text>"), std::string::npos);
}

TEST(ReportHtml, SummarySaysWhatWasReadAndWhatWasNot) {
  InputSummary pcap;
  pcap.file = "uplink.pcapng";
  pcap.format = "pcapng";
  auto& s = pcap.outcome.stats;
  s.bytes = 3 * 1024 * 1024;
  s.packets = 40211;
  s.sip_messages = 812;
  s.tls_packets = 1204;
  s.non_sip = 37;
  s.tcp_gaps = 2;
  s.incomplete_fragments = 1;
  s.ip_fragments = 6;
  s.reassembled_datagrams = 3;
  s.tcp_retransmissions = 5;
  s.unsupported = 88;
  s.malformed = 4;
  InputSummary broken;
  broken.file = "broken.pcap";
  broken.format = "pcap";
  broken.outcome.error = ReadError{"broken.pcap", 812, "truncated record"};
  AnalysisStats stats;
  stats.messages = 812;
  stats.unparsable = 2;
  stats.verdicts = 9;
  stats.calls_not_kept = 3;
  stats.parse_errors = {"uplink.pcapng: offset 1234: missing Via"};
  auto c = register_call("kept@host", VerdictKind::ok_after_challenge);
  c.messages_not_kept = 12;

  auto html = render({c}, {pcap, broken}, stats);
  for (const char* text : {">uplink.pcapng</td>", "3.0 MiB", "40211 packets", "812 SIP messages",
                           "1204 TLS packets (encrypted, not readable)", "37 non-SIP payloads",
                           "2 TCP streams with missing bytes (gaps)", "1 datagram with fragments missing",
                           "88 packets of unsupported protocols", "4 malformed packets",
                           "3 datagrams reassembled from 6 fragments", "5 TCP retransmissions skipped",
                           "stopped: broken.pcap: offset 812: truncated record", "<b>2</b> rejected by the parser",
                           "<b>9</b> verdicts", "uplink.pcapng: offset 1234: missing Via",
                           "3 later calls are not drawn here", "12 later messages not kept",
                           "12 more messages in this call, not drawn"}) {
    SCOPED_TRACE(text);
    EXPECT_NE(html.find(text), std::string::npos);
  }
  // A clean input says so instead of listing zeros.
  auto clean = render({c});
  EXPECT_NE(clean.find("<span class=\"none\">nothing</span>"), std::string::npos);
  EXPECT_EQ(clean.find("TLS"), std::string::npos);
  EXPECT_EQ(clean.find("later calls"), std::string::npos);
}

TEST(ReportHtml, CountsAndFiltersPerVerdict) {
  auto html = render({register_call("a@h", VerdictKind::realm_mismatch), register_call("b@h", VerdictKind::ok),
                      register_call("c@h", VerdictKind::realm_mismatch)});
  EXPECT_NE(html.find("<label for=\"f-realm_mismatch\" class=\"bad\" data-count=\"2\">realm_mismatch<i>2</i></label>"),
            std::string::npos);
  EXPECT_NE(html.find("<label for=\"f-ok\" class=\"good\" data-count=\"1\">"), std::string::npos);
  EXPECT_NE(html.find("#f-realm_mismatch:checked~main [data-verdict]:not([data-verdict~=\"realm_mismatch\"])"
                      "{display:none}"),
            std::string::npos);
  EXPECT_NE(html.find("#f-problems:checked~main .pass{display:none}"), std::string::npos);
  EXPECT_NE(html.find("<label for=\"f-problems\" class=\"bad\">calls with a problem<i>2</i></label>"),
            std::string::npos);
  // Kinds absent from the capture get no filter.
  EXPECT_EQ(html.find("f-forbidden"), std::string::npos);
  EXPECT_EQ(count(html, "type=\"radio\""), 4u);  // all, problems, realm_mismatch, ok
}

TEST(ReportHtml, EvidenceWithTheMismatchMarked) {
  auto c = register_call("ev@host", VerdictKind::realm_mismatch, Confidence::certain, 401);
  c.verdicts[0].evidence = {{"challenged_by", std::string("upstream")},
                            {"challenge_realm", std::string("example.test")},
                            {"credential_realm", std::string("pbx.local")},
                            {"answer_delay_s", 0.25},
                            {"nonce_age_s", 42LL},
                            {"stale", false},
                            {"offered_algorithms", std::vector<std::string>{"SHA-256", "MD5"}},
                            {"credential_username", std::string()}};
  auto s = section(render({c}), 1);
  EXPECT_NE(s.find("<dt>challenge_realm</dt><dd class=\"diff\">example.test</dd>"), std::string::npos);
  EXPECT_NE(s.find("<dt>credential_realm</dt><dd class=\"diff\">pbx.local</dd>"), std::string::npos);
  EXPECT_EQ(count(s, "class=\"diff\""), 2u);
  EXPECT_NE(s.find("<dt>challenged_by</dt><dd>upstream</dd>"), std::string::npos);
  EXPECT_NE(s.find("<dd>0.250 s</dd>"), std::string::npos);
  EXPECT_NE(s.find("<dd>42 s</dd>"), std::string::npos);
  EXPECT_NE(s.find("<dd>false</dd>"), std::string::npos);
  EXPECT_NE(s.find("<dd>SHA-256, MD5</dd>"), std::string::npos);
  EXPECT_NE(s.find("<dt>credential_username</dt><dd><i>(empty)</i></dd>"), std::string::npos);
  EXPECT_NE(s.find("<p class=\"hint\">" + std::string(diag::hint_for(VerdictKind::realm_mismatch)).substr(0, 40)),
            std::string::npos);
  EXPECT_NE(s.find("final <b>401</b>"), std::string::npos);
}

TEST(ReportHtml, LongTextIsClippedInTheDiagram) {
  CallLadder c;
  c.call_id = "long@host";
  c.messages = {request(kPhone, kRegistrar, "INVITE sip:" + std::string(5000, 'x') + "@example.test", "1 INVITE", true,
                        std::string(3000, 'a') + " " + std::string(3000, 'b'))};
  auto s = section(render({c}), 1);
  std::smatch label;
  ASSERT_TRUE(std::regex_search(s, label, std::regex(R"re(<text class="l" x="\d+" y="19">([^<]*)</text>)re")));
  EXPECT_LT(label[1].length(), 120);
  EXPECT_TRUE(label[1].str().ends_with("\xE2\x80\xA6")) << label[1];
  // The tooltip has what the diagram cut, bounded too: the page stays small whatever a header holds.
  EXPECT_NE(s.find("\n" + std::string(399, 'a') + "\xE2\x80\xA6</title>"), std::string::npos);
  EXPECT_LT(s.size(), 4000u);
}

TEST(ReportHtml, SizeStaysLinearAndBounded) {
  auto make = [](std::size_t calls, std::size_t messages) {
    std::vector<CallLadder> ladders;
    for (std::size_t i = 0; i < calls; ++i) {
      auto c = register_call("call-" + std::to_string(i) + "@host", VerdictKind::wrong_password, Confidence::likely, 401);
      while (c.messages.size() < messages) c.messages.push_back(c.messages[c.messages.size() % 4]);
      ladders.push_back(std::move(c));
    }
    return ladders;
  };
  auto small = render(make(200, 8)).size();
  auto large = render(make(2000, 8)).size();
  EXPECT_GT(large, small * 9);
  EXPECT_LT(large, small * 11);
  EXPECT_LT(large / (2000 * 8), 1000u) << "bytes per arrow";

  // The analyzer's limits (2000 calls of 60 messages) still give a page a browser opens:
  // diagrams stop at a page budget, every call keeps its verdict.
  auto html = render(make(2000, 60));
  EXPECT_LT(html.size(), 24u * 1024 * 1024);
  EXPECT_EQ(count(html, "<section class=\"call"), 2000u);
  EXPECT_LE(count(html, "<g class=\"m "), 20000u);
  EXPECT_GT(count(html, "<g class=\"m "), 19000u);
  EXPECT_NE(html.find("Diagram left out"), std::string::npos);
  EXPECT_NE(html.find("Ladder diagrams are drawn for the first 333 calls only"), std::string::npos);
}

TEST(ReportHtml, NoCalls) {
  auto html = render({});
  EXPECT_NE(html.find("No SIP calls were found in the input."), std::string::npos);
  EXPECT_EQ(html.find("<section class=\"call"), std::string::npos);
  EXPECT_TRUE(html.ends_with("</html>\n"));
  expect_only_report_tags(html);
}

}  // namespace
}  // namespace sw::capture
