#include "proxy/metrics.hpp"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <sstream>

namespace sw::proxy {
namespace {

std::string_view counted_as(std::string_view method) { return kCountedMethods[method_index(method)]; }

TEST(Metrics, MethodsAreCountedByNameAndTheRestAsOther) {
  for (auto method : {"INVITE", "ACK", "BYE", "CANCEL", "REGISTER", "OPTIONS", "PRACK", "UPDATE", "INFO", "SUBSCRIBE",
                      "NOTIFY", "REFER", "MESSAGE", "PUBLISH"})
    EXPECT_EQ(counted_as(method), method);
  EXPECT_EQ(counted_as("invite"), "other");  // methods are case-sensitive (RFC 3261 7.1)
  EXPECT_EQ(counted_as("FOO"), "other");
  EXPECT_EQ(counted_as(""), "other");
  EXPECT_EQ(counted_as("other"), "other");
}

TEST(Metrics, SentMessagesAreCountedByTheirStartLine) {
  MessageCounts c;
  c.start_line("SIP/2.0 407 Proxy Authentication Required\r\nVia: x\r\n\r\n");
  c.start_line("SIP/2.0 200 OK\r\n\r\n");
  c.start_line("SIP/2.0 200 OK\r\n\r\n");
  c.start_line("INVITE sip:2000@example.test SIP/2.0\r\n\r\n");
  c.start_line("NEWTHING sip:x SIP/2.0\r\n\r\n");
  c.start_line("SIP/2.0 abc\r\n\r\n");  // not a status: not counted
  c.start_line("SIP/2.0 999 Nine\r\n\r\n");
  EXPECT_EQ(c.responses[407 - 100], 1u);
  EXPECT_EQ(c.responses[200 - 100], 2u);
  EXPECT_EQ(c.requests[method_index("INVITE")], 1u);
  EXPECT_EQ(c.requests[method_index("other")], 1u);
  std::uint64_t responses = 0;
  for (auto n : c.responses) responses += n;
  EXPECT_EQ(responses, 3u);
}

TEST(Metrics, MalformedMessagesCountTheirReasonAndTheLimitBehindIt) {
  Counters c;
  c.malformed(Errc::too_large, true);
  c.malformed(Errc::line_too_long, false);
  c.malformed(Errc::bad_via, true);
  c.malformed(Errc::missing_header, false);
  EXPECT_EQ(c.rejected[0], 1u);  // too_large
  EXPECT_EQ(c.rejected[static_cast<std::size_t>(Errc::bad_via) - 1], 1u);
  EXPECT_EQ(kRejectReasonNames[static_cast<std::size_t>(Errc::bad_via) - 1], "bad_via");
  EXPECT_EQ(c.dropped[static_cast<std::size_t>(DropReason::malformed)], 2u);
  EXPECT_EQ(c.limit(Limit::max_message_bytes), 1u);
  EXPECT_EQ(c.limit(Limit::max_line_bytes), 1u);
  EXPECT_EQ(c.limit(Limit::max_headers), 0u);
}

TEST(Metrics, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("plain 1.0"), "plain 1.0");
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
}

// The exposition split into what a Prometheus parser reads.
struct Parsed {
  std::map<std::string, std::string> help, type;  // by family name
  std::map<std::string, std::string> samples;     // "name{labels}" -> value
  std::vector<std::string> order;                 // family names, as their TYPE lines come
};

Parsed parse(const std::string& text) {
  Parsed p;
  static const std::regex sample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-z_]+="[^"\\\n]*"(,[a-z_]+="[^"\\\n]*")*\})? (\S+)$)");
  std::istringstream in(text);
  std::string line, current;
  while (std::getline(in, line)) {
    SCOPED_TRACE(line);
    if (line.starts_with("# HELP ")) {
      auto rest = line.substr(7);
      auto name = rest.substr(0, rest.find(' '));
      EXPECT_FALSE(p.help.count(name)) << "HELP twice";
      p.help[name] = rest.substr(name.size() + 1);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      auto rest = line.substr(7);
      current = rest.substr(0, rest.find(' '));
      EXPECT_TRUE(p.help.count(current)) << "HELP comes before TYPE";
      EXPECT_FALSE(p.type.count(current)) << "TYPE twice";
      p.type[current] = rest.substr(current.size() + 1);
      p.order.push_back(current);
      continue;
    }
    std::smatch m;
    if (!std::regex_match(line, m, sample)) {
      ADD_FAILURE() << "not a sample line";
      continue;
    }
    EXPECT_EQ(m[1].str(), current) << "a sample outside its family";
    auto key = m[1].str() + m[2].str();
    EXPECT_FALSE(p.samples.count(key)) << "sample twice";
    p.samples[key] = m[4].str();
  }
  EXPECT_TRUE(text.ends_with("\n"));
  return p;
}

TEST(Metrics, ExpositionFormat) {
  Snapshot s;
  s.relay.received = 12;
  s.relay.in.request("REGISTER");
  s.relay.in.request("REGISTER");
  s.relay.in.response(401);
  s.relay.out.start_line("SIP/2.0 401 Unauthorized\r\n");
  s.relay.out.start_line("REGISTER sip:x SIP/2.0\r\n");
  s.relay.forwarded_requests = 2;
  s.relay.drop(DropReason::response_unroutable);
  s.relay.malformed(Errc::too_many_headers, true);
  s.relay.hit(Limit::max_tcp_connections);
  s.challenges.challenges = 3;
  s.challenges.source_blocks = 1;
  s.challenges.user_blocks = 2;
  diag::Verdict v;
  v.verdict = diag::VerdictKind::wrong_password;
  v.confidence = diag::Confidence::likely;
  s.verdicts.count(v);
  s.verdicts.count(v);
  s.tcp_connections = 4;
  s.flows = 7;
  s.bindings = 2;
  s.uptime_seconds = 12.5;
  auto text = render_prometheus(s);
  auto p = parse(text);
  ASSERT_FALSE(::testing::Test::HasFailure()) << text;

  for (const auto& [name, type] : p.type) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(name.starts_with("sipwitness_"));
    EXPECT_TRUE(type == "counter" || type == "gauge") << type;
    EXPECT_EQ(type == "counter", name.ends_with("_total")) << "counters, and only they, end in _total";
    EXPECT_FALSE(p.help[name].empty());
  }
  auto at = [&](const std::string& key) {
    auto it = p.samples.find(key);
    return it == p.samples.end() ? std::string("(missing)") : it->second;
  };
  EXPECT_EQ(at("sipwitness_messages_received_total"), "12");
  EXPECT_EQ(at(R"(sipwitness_sip_requests_total{direction="received",method="REGISTER"})"), "2");
  EXPECT_EQ(at(R"(sipwitness_sip_requests_total{direction="sent",method="REGISTER"})"), "1");
  EXPECT_EQ(at(R"(sipwitness_sip_requests_total{direction="sent",method="INVITE"})"), "0");
  EXPECT_EQ(at(R"(sipwitness_sip_responses_total{direction="received",code="401"})"), "1");
  EXPECT_EQ(at(R"(sipwitness_sip_responses_total{direction="sent",code="401"})"), "1");
  EXPECT_EQ(at(R"(sipwitness_sip_responses_total{direction="sent",code="200"})"), "(missing)")
      << "codes never seen are left out";
  EXPECT_EQ(at("sipwitness_forwarded_requests_total"), "2");
  EXPECT_EQ(at(R"(sipwitness_dropped_total{reason="response_unroutable"})"), "1");
  EXPECT_EQ(at(R"(sipwitness_dropped_total{reason="malformed"})"), "0");
  EXPECT_EQ(at(R"(sipwitness_rejected_total{reason="too_many_headers"})"), "1");
  EXPECT_EQ(at(R"(sipwitness_limit_hits_total{limit="limits.max_headers"})"), "1");
  EXPECT_EQ(at(R"(sipwitness_limit_hits_total{limit="relay.max_tcp_connections"})"), "1");
  EXPECT_EQ(at(R"(sipwitness_limit_hits_total{limit="diag.max_flows"})"), "0");
  EXPECT_EQ(at("sipwitness_challenges_issued_total"), "3");
  EXPECT_EQ(at("sipwitness_challenge_blocks_total{key=\"source\"}"), "1");
  EXPECT_EQ(at("sipwitness_challenge_blocks_total{key=\"user\"}"), "2");
  EXPECT_EQ(at(R"(sipwitness_verdicts_total{verdict="wrong_password",confidence="likely"})"), "2");
  EXPECT_EQ(at(R"(sipwitness_verdicts_total{verdict="unanswered",confidence="certain"})"), "0");
  EXPECT_EQ(at(R"(sipwitness_connections{transport="tcp"})"), "4");
  EXPECT_EQ(at(R"(sipwitness_connections{transport="tls"})"), "0");
  EXPECT_EQ(at("sipwitness_auth_flows"), "7");
  EXPECT_EQ(at("sipwitness_bindings"), "2");
  EXPECT_EQ(at("sipwitness_uptime_seconds"), "12.500");
  EXPECT_EQ(p.samples.count(std::string(R"(sipwitness_build_info{version=")") + SIPWITNESS_VERSION + "\"}"), 1u);

  // Every reason, limit, method and verdict is there from the start, so rate() works on the first scrape.
  std::size_t drops = 0, limits = 0;
  for (const auto& [key, value] : p.samples) {
    drops += key.starts_with("sipwitness_dropped_total{");
    limits += key.starts_with("sipwitness_limit_hits_total{");
  }
  EXPECT_EQ(drops, kDropReasonNames.size());
  EXPECT_EQ(limits, kLimitNames.size());
}

// With several workers a scrape sums their parts: every sample of the total is
// the sum of the parts' samples (uptime is the total's own).
TEST(Metrics, WorkersPartsAddUpSampleBySample) {
  Snapshot part;
  auto& r = part.relay;
  r.received = 1;
  r.forwarded_requests = 2;
  r.forwarded_responses = 3;
  r.replied = 4;
  r.absorbed = 5;
  r.send_failures = 6;
  r.tls_failures = 7;
  for (auto* counts : {&r.in, &r.out}) {
    counts->requests.fill(8);
    counts->responses.fill(9);
  }
  r.dropped.fill(10);
  r.rejected.fill(11);
  r.limits.fill(12);
  part.challenges = {13, 14, 15, 16, 17, 18};
  for (auto& kind : part.verdicts.counts) kind.fill(19);
  part.tcp_connections = 20;
  part.tls_connections = 21;
  part.flows = 22;
  part.bindings = 23;
  Snapshot total;
  add(total, part);
  add(total, part);
  auto one = parse(render_prometheus(part)).samples;
  auto two = parse(render_prometheus(total)).samples;
  ASSERT_EQ(one.size(), two.size());
  std::size_t checked = 0;
  for (const auto& [key, value] : one) {
    if (key.starts_with("sipwitness_build_info") || key == "sipwitness_uptime_seconds") continue;
    SCOPED_TRACE(key);
    ASSERT_NE(value, "0") << "every sample of the part is set";
    EXPECT_EQ(two[key], std::to_string(2 * std::stoull(value)));
    ++checked;
  }
  EXPECT_GT(checked, 1000u);  // every response code too
}

}  // namespace
}  // namespace sw::proxy
