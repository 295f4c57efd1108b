#include "proxy/probe.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <sstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "auth/digest.hpp"
#include "diag/seal.hpp"
#include "proxy/reply.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"
#include "test_messages.hpp"

// The active ALG test: the messages it sends, how it reads the far side's
// answer, its output, and a run over loopback sockets against a stand-in outer.
namespace sw::proxy {
namespace {

using test::parse_ok;
using test::replace_all;
using test::replace_in_header_lines;

constexpr std::string_view kKey = "lab key shared by probe and outer";
constexpr std::string_view kOwn = "10.77.1.2:40001";
constexpr std::string_view kOwnIp = "10.77.1.2";
constexpr std::string_view kPublic = "203.0.113.9:61000";  // what a NAT maps kOwn to
const Address kNatSource = *Address::from_ip("203.0.113.9", 61000);

ProbeEndpoints endpoints(Transport t = Transport::udp) {
  return {t, *Address::from_ip(kOwnIp, 40001), media_port_for(40001)};
}

ProbeTokens tokens() {
  ProbeTokens t;
  t.branch = "z9hG4bKswptest1";
  t.call_id = "c0ffee01";
  t.from_tag = "f1";
  t.nonce = "0123456789abcdef0123456789abcdef";
  t.cseq = 1;
  t.sdp_session = 4242;
  return t;
}

std::set<std::string> fields_holding(const sip::Message& m, std::string_view needle) {
  std::set<std::string> out;
  for (const auto& f : diag::seal_fields(m))
    if (f.value.find(needle) != std::string::npos) out.insert(f.name);
  return out;
}

// ---- the requests -------------------------------------------------------------

TEST(ProbeRequest, OwnAddressInExactlyTheFieldsAnAlgRewrites) {
  struct Row {
    std::string_view method;
    std::set<std::string> fields;
  };
  const Row rows[] = {
      {"REGISTER", {"ruri", "via.0", "from", "to", "call-id", "contact.0", "authorization.0", "authorization.0.uri"}},
      {"INVITE", {"ruri", "via.0", "from", "to", "call-id", "contact.0", "sdp.o", "sdp.c.0", "sdp.rtcp.0"}},
      {"OPTIONS", {"ruri", "via.0", "from", "to", "call-id", "contact.0"}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.method));
    auto text = build_probe_request(endpoints(), row.method, tokens());
    auto m = parse_ok(text);
    EXPECT_TRUE(m.is_request);
    EXPECT_EQ(m.method, row.method);
    EXPECT_EQ(m.cseq_method, row.method);
    EXPECT_EQ(m.request_uri, "sip:probe@10.77.1.2:40001");
    EXPECT_EQ(fields_holding(m, kOwnIp), row.fields);
    // Every header line with our address is one of those fields: nothing else leaks it.
    for (const auto& h : m.headers) {
      bool sealed_field = h.id == sip::HeaderId::Via || h.id == sip::HeaderId::From || h.id == sip::HeaderId::To ||
                          h.id == sip::HeaderId::CallId || h.id == sip::HeaderId::Contact ||
                          h.id == sip::HeaderId::Authorization;
      if (!sealed_field) {
        EXPECT_EQ(h.value.find(kOwnIp), std::string_view::npos) << h.name;
      }
    }
    EXPECT_EQ(m.value(sip::HeaderId::Via), "SIP/2.0/UDP 10.77.1.2:40001;branch=z9hG4bKswptest1;rport");
    EXPECT_EQ(m.value(sip::HeaderId::From), "<sip:probe@10.77.1.2:40001>;tag=f1");
    EXPECT_EQ(m.value(sip::HeaderId::To), "<sip:probe@10.77.1.2:40001>");
    EXPECT_EQ(m.value(sip::HeaderId::CallId), "c0ffee01@10.77.1.2");
    EXPECT_EQ(m.value(sip::HeaderId::Contact), "<sip:probe@10.77.1.2:40001>");
    // Sealed as a probe, it is what the far side recognises.
    auto sealed = parse_ok(diag::add_seal(m, kKey, "0123456789abcdef", true));
    auto check = diag::check_seal(sealed, kKey);
    EXPECT_EQ(check.status, diag::SealCheck::Status::intact);
    EXPECT_TRUE(check.probe);
  }
}

TEST(ProbeRequest, RegisterCarriesWellFormedCredentialsAndExpiresZero) {
  auto m = parse_ok(build_probe_request(endpoints(), "REGISTER", tokens()));
  EXPECT_EQ(m.value(sip::HeaderId::Expires), "0");
  auto c = auth::parse_credentials(m.value(sip::HeaderId::Authorization));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->username, "probe");
  EXPECT_EQ(c->realm, "sipwitness-probe");
  EXPECT_EQ(c->nonce, tokens().nonce);
  EXPECT_EQ(c->uri, "sip:probe@10.77.1.2:40001");
  EXPECT_EQ(c->algorithm, auth::Algorithm::md5);
  EXPECT_EQ(c->response.size(), 32u);
}

TEST(ProbeRequest, InviteCarriesAnSdpOfferWithTheMediaPorts) {
  auto ep = endpoints();
  auto m = parse_ok(build_probe_request(ep, "INVITE", tokens()));
  EXPECT_EQ(m.value(sip::HeaderId::ContentType), "application/sdp");
  EXPECT_EQ(m.first(sip::HeaderId::Authorization), nullptr);
  auto body = std::string(m.body);
  EXPECT_NE(body.find("o=probe 4242 4242 IN IP4 10.77.1.2\r\n"), std::string::npos);
  EXPECT_NE(body.find("c=IN IP4 10.77.1.2\r\n"), std::string::npos);
  EXPECT_NE(body.find("m=audio " + std::to_string(ep.media_port) + " RTP/AVP"), std::string::npos);
  EXPECT_NE(body.find("a=rtcp:" + std::to_string(ep.media_port + 1) + " IN IP4 10.77.1.2\r\n"), std::string::npos);
  EXPECT_EQ(m.value(sip::HeaderId::ContentLength), std::to_string(body.size()));
}

TEST(ProbeRequest, TcpSaysSoInViaAndContactAndFramesOnAStream) {
  auto text = build_probe_request(endpoints(Transport::tcp), "OPTIONS", tokens());
  auto framed = sip::frame_stream(text);
  ASSERT_TRUE(framed.ok());
  EXPECT_EQ(*framed, text.size());
  auto m = parse_ok(text, sip::Framing::stream);
  EXPECT_TRUE(m.value(sip::HeaderId::Via).starts_with("SIP/2.0/TCP 10.77.1.2:40001;"));
  EXPECT_EQ(m.value(sip::HeaderId::Contact), "<sip:probe@10.77.1.2:40001;transport=tcp>");
}

TEST(ProbeRequest, MediaPortsAreAnEvenPairBesideTheSignallingPort) {
  for (unsigned port : {1u, 5060u, 5061u, 40000u, 40001u, 65532u, 65533u, 65534u, 65535u}) {
    SCOPED_TRACE(port);
    auto rtp = media_port_for(static_cast<std::uint16_t>(port));
    EXPECT_EQ(rtp % 2, 0);
    EXPECT_NE(rtp, port);
    EXPECT_NE(rtp + 1u, port);
    EXPECT_LE(rtp + 1u, 65535u);
  }
}

// ---- ACK and matching -----------------------------------------------------------

std::string reply_to(const sip::Message& request, int status, std::string_view reason, std::string_view extra = {},
                     std::string_view body = {}) {
  return make_reply(request, kNatSource, status, reason, {}, "secret", extra, body);
}

TEST(ProbeAck, FollowsRfc3261Section17113) {
  auto invite = parse_ok(diag::add_seal(parse_ok(build_probe_request(endpoints(), "INVITE", tokens())), kKey,
                                        "0123456789abcdef", true));
  auto response = parse_ok(reply_to(invite, 488, "Probe Answered"));
  ASSERT_FALSE(sip::tag_of(response.value(sip::HeaderId::To)).empty());
  auto ack = parse_ok(build_probe_ack(invite, response));
  EXPECT_EQ(ack.method, "ACK");
  EXPECT_EQ(ack.request_uri, invite.request_uri);
  EXPECT_EQ(ack.count(sip::HeaderId::Via), 1u);
  EXPECT_EQ(ack.value(sip::HeaderId::Via), sip::top_via(invite));
  EXPECT_EQ(ack.value(sip::HeaderId::From), invite.value(sip::HeaderId::From));
  EXPECT_EQ(ack.value(sip::HeaderId::To), response.value(sip::HeaderId::To));
  EXPECT_EQ(ack.value(sip::HeaderId::CallId), invite.value(sip::HeaderId::CallId));
  EXPECT_EQ(ack.value(sip::HeaderId::CSeq), "1 ACK");
  EXPECT_TRUE(ack.body.empty());
}

TEST(ProbeMatch, ByBranchCSeqMethodAndCallIdBeforeTheAt) {
  auto request = parse_ok(build_probe_request(endpoints(), "OPTIONS", tokens()));
  auto ok = reply_to(request, 200, "OK");
  EXPECT_TRUE(answers(parse_ok(ok), request));
  // An ALG that rewrites the Call-ID host does not hide the answer.
  EXPECT_TRUE(answers(parse_ok(replace_in_header_lines(ok, "Call-ID:", kOwnIp, "203.0.113.9")), request));
  EXPECT_FALSE(answers(parse_ok(replace_all(ok, "z9hG4bKswptest1", "z9hG4bKother")), request));
  EXPECT_FALSE(answers(parse_ok(replace_all(ok, "c0ffee01", "c0ffee02")), request));
  auto other = tokens();
  auto reg = parse_ok(build_probe_request(endpoints(), "REGISTER", other));
  EXPECT_FALSE(answers(parse_ok(reply_to(reg, 200, "OK")), request));  // same branch, another method
  EXPECT_FALSE(answers(request, request));
}

// ---- findings -----------------------------------------------------------------

// The far side of the lab: checks the request as it arrived, answers with the
// report and seals its answer, as an outer does.
std::string outer_answer(const sip::Message& arrived, std::string_view outer_key = kKey) {
  auto reply = make_probe_answer(arrived, kNatSource, diag::check_seal(arrived, outer_key), "secret");
  return diag::add_seal(parse_ok(reply), outer_key, "fedcba9876543210");
}

sip::Message sealed_request(std::string_view method, Transport t = Transport::udp) {
  return parse_ok(diag::add_seal(parse_ok(build_probe_request(endpoints(t), method, tokens())), kKey,
                                 "0123456789abcdef", true));
}

const ProbeFinding* find(const std::vector<ProbeFinding>& findings, ProbeDirection d, std::string_view field) {
  for (const auto& f : findings)
    if (f.direction == d && f.field == field) return &f;
  return nullptr;
}

TEST(ProbeFindings, NothingChangedEitherWayIsNoFinding) {
  auto request = sealed_request("REGISTER");
  auto response = parse_ok(outer_answer(request));
  EXPECT_TRUE(findings_for(Transport::udp, request, response, kKey).empty());
}

TEST(ProbeFindings, RewritesThereComeFromTheReportAndBackFromTheResponseSeal) {
  auto request = sealed_request("REGISTER");
  // On the way there the ALG maps our address to the public one in Via, Contact
  // and the digest uri=.
  auto there = replace_in_header_lines(std::string(request.raw), "Via:", kOwn, kPublic);
  there = replace_in_header_lines(there, "Contact:", kOwn, kPublic);
  there = replace_in_header_lines(there, "Authorization:", "uri=\"sip:probe@10.77.1.2:40001\"",
                        "uri=\"sip:probe@203.0.113.9:61000\"");
  auto answer = outer_answer(parse_ok(there));
  // ... and on the way back it maps the Via of the response back.
  auto back = replace_in_header_lines(answer, "Via:", kPublic, kOwn);
  auto findings = findings_for(Transport::udp, request, parse_ok(back), kKey);

  const auto* via = find(findings, ProbeDirection::there, "Via");
  ASSERT_NE(via, nullptr);
  EXPECT_EQ(via->transport, Transport::udp);
  EXPECT_EQ(via->message, "REGISTER");
  EXPECT_EQ(via->sent, "SIP/2.0/UDP 10.77.1.2:40001;branch=z9hG4bKswptest1;rport");
  EXPECT_EQ(via->arrived, "SIP/2.0/UDP 203.0.113.9:61000;branch=z9hG4bKswptest1;rport");
  const auto* contact = find(findings, ProbeDirection::there, "Contact");
  ASSERT_NE(contact, nullptr);
  EXPECT_EQ(contact->arrived, "<sip:probe@203.0.113.9:61000>");
  const auto* uri = find(findings, ProbeDirection::there, "Authorization uri=");
  ASSERT_NE(uri, nullptr);
  EXPECT_EQ(uri->sent, "sip:probe@10.77.1.2:40001");
  EXPECT_EQ(uri->arrived, "sip:probe@203.0.113.9:61000");
  EXPECT_NE(find(findings, ProbeDirection::there, "Authorization"), nullptr);  // the header as a whole

  const auto* via_back = find(findings, ProbeDirection::back, "Via");
  ASSERT_NE(via_back, nullptr);
  EXPECT_EQ(via_back->message, "200 (REGISTER)");
  EXPECT_TRUE(via_back->sent.starts_with("SIP/2.0/UDP 203.0.113.9:61000;"));
  EXPECT_TRUE(via_back->arrived.starts_with("SIP/2.0/UDP 10.77.1.2:40001;"));
  EXPECT_EQ(findings.size(), 5u);
  EXPECT_EQ(find(findings, ProbeDirection::back, "X-Sipwitness-Seal"), nullptr);
}

TEST(ProbeFindings, SdpRewritesOfTheInvite) {
  auto request = sealed_request("INVITE");
  // Same length, so the Content-Length still holds (as a careful ALG would fix it).
  auto there = replace_all(std::string(request.raw), "IN IP4 10.77.1.2", "IN IP4 10.99.9.9");
  auto answer = parse_ok(outer_answer(parse_ok(there)));
  EXPECT_EQ(answer.status, 488);
  auto findings = findings_for(Transport::udp, request, answer, kKey);
  for (auto field : {"SDP o=", "SDP c=", "SDP a=rtcp", "body"}) {
    SCOPED_TRACE(field);
    const auto* f = find(findings, ProbeDirection::there, field);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->message, "INVITE");
  }
  EXPECT_EQ(find(findings, ProbeDirection::there, "SDP c=")->arrived, "c=IN IP4 10.99.9.9");
  EXPECT_EQ(findings.size(), 4u);
}

TEST(ProbeFindings, SealStrippedOnTheWayThere) {
  auto request = sealed_request("OPTIONS");
  diag::SealCheck absent;  // what the far side reports for a message without a seal
  auto reply = reply_to(request, 200, "OK", "Content-Type: " + std::string(diag::kSealReportType) + "\r\n",
                        diag::seal_report_json(absent));
  auto response = parse_ok(diag::add_seal(parse_ok(reply), kKey, "fedcba9876543210"));
  auto findings = findings_for(Transport::tcp, request, response, kKey);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].transport, Transport::tcp);
  EXPECT_EQ(findings[0].direction, ProbeDirection::there);
  EXPECT_EQ(findings[0].field, "X-Sipwitness-Seal");
  EXPECT_EQ(findings[0].sent, "(present)");
  EXPECT_EQ(findings[0].arrived, "(absent)");
}

TEST(ProbeFindings, SealStrippedOnTheWayBack) {
  auto request = sealed_request("OPTIONS");
  auto answer = parse_ok(outer_answer(request));
  auto check = diag::check_seal(answer, kKey);
  auto findings = findings_for(Transport::udp, request, parse_ok(diag::strip_seal(answer, check)), kKey);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].direction, ProbeDirection::back);
  EXPECT_EQ(findings[0].message, "200 (OPTIONS)");
  EXPECT_EQ(findings[0].field, "X-Sipwitness-Seal");
  EXPECT_EQ(findings[0].arrived, "(absent)");
}

TEST(ProbeFindings, AnotherKeyIsReportedWithTheSealDetail) {
  auto request = sealed_request("OPTIONS");
  // An outer with another key does not recognise the probe: it relays it, and
  // what comes back has no report and a seal we cannot verify.
  auto relayed = reply_to(request, 503, "Service Unavailable");
  auto response = parse_ok(diag::add_seal(parse_ok(relayed), "another lab key, not ours", "fedcba9876543210"));
  auto findings = findings_for(Transport::udp, request, response, kKey);
  ASSERT_EQ(findings.size(), 2u);
  const auto* there = find(findings, ProbeDirection::there, "X-Sipwitness-Seal");
  ASSERT_NE(there, nullptr);
  EXPECT_EQ(there->arrived, "(not recognised: answered 503 without a seal report)");
  const auto* back = find(findings, ProbeDirection::back, "X-Sipwitness-Seal");
  ASSERT_NE(back, nullptr);
  EXPECT_EQ(back->message, "503 (OPTIONS)");
  EXPECT_TRUE(back->arrived.starts_with("invalid: "));
  EXPECT_NE(back->arrived.find("another lab key"), std::string::npos);
}

TEST(ProbeFindings, InvalidSealReportedByTheFarSide) {
  auto request = sealed_request("OPTIONS");
  diag::SealCheck invalid;
  invalid.status = diag::SealCheck::Status::invalid;
  invalid.detail = "the seal's mac does not verify";
  auto reply = reply_to(request, 200, "OK", "Content-Type: " + std::string(diag::kSealReportType) + "\r\n",
                        diag::seal_report_json(invalid));
  auto response = parse_ok(diag::add_seal(parse_ok(reply), kKey, "fedcba9876543210"));
  auto findings = findings_for(Transport::udp, request, response, kKey);
  ASSERT_EQ(findings.size(), 1u);
  EXPECT_EQ(findings[0].arrived, "invalid: the seal's mac does not verify");
}

// ---- per transport, exit code, output -------------------------------------------

ProbeMessageResult answered(std::string method, std::vector<ProbeFinding> findings = {}) {
  ProbeMessageResult m;
  m.method = std::move(method);
  m.sent = m.answered = true;
  m.status = m.method == "INVITE" ? 488 : 200;
  m.findings = std::move(findings);
  return m;
}

ProbeMessageResult unanswered(std::string method, bool sent = true) {
  ProbeMessageResult m;
  m.method = std::move(method);
  m.sent = sent;
  m.note = sent ? "timed out" : "not sent";
  return m;
}

ProbeTransportResult transport(Transport t, std::vector<ProbeMessageResult> messages) {
  ProbeTransportResult r;
  r.transport = t;
  r.target = "198.51.100.2:5060";
  r.local = std::string(kOwn);
  r.messages = std::move(messages);
  return r;
}

ProbeFinding via_finding() {
  return {Transport::udp, "REGISTER", ProbeDirection::there, "Via", "SIP/2.0/UDP 10.77.1.2:40001",
          "SIP/2.0/UDP 203.0.113.9:61000"};
}

TEST(ProbeResult, ADroppedMessageAmongAnsweredOnesIsAFinding) {
  auto r = transport(Transport::udp, {answered("REGISTER"), unanswered("INVITE"), answered("OPTIONS")});
  add_unanswered_findings(r);
  ASSERT_EQ(r.messages[1].findings.size(), 1u);
  const auto& f = r.messages[1].findings[0];
  EXPECT_EQ(f.message, "INVITE");
  EXPECT_EQ(f.field, "(message)");
  EXPECT_EQ(f.sent, "INVITE");
  EXPECT_EQ(f.arrived, "(no answer: dropped by the device?)");
  EXPECT_TRUE(r.messages[0].findings.empty());
  EXPECT_EQ(probe_exit_code({r}), 3);
}

TEST(ProbeResult, ASilentTransportOrUnsentMessageIsNoFinding) {
  auto silent = transport(Transport::tcp, {unanswered("REGISTER"), unanswered("INVITE"), unanswered("OPTIONS")});
  add_unanswered_findings(silent);
  auto cut = transport(Transport::tcp, {answered("REGISTER"), unanswered("INVITE", false), unanswered("OPTIONS", false)});
  add_unanswered_findings(cut);
  for (const auto* r : {&silent, &cut})
    for (const auto& m : r->messages) EXPECT_TRUE(m.findings.empty()) << m.method;
}

TEST(ProbeResult, ExitCodes) {
  auto clean = transport(Transport::udp, {answered("REGISTER"), answered("INVITE"), answered("OPTIONS")});
  auto rewritten = transport(Transport::udp, {answered("REGISTER", {via_finding()}), answered("INVITE")});
  auto silent = transport(Transport::tcp, {unanswered("REGISTER"), unanswered("INVITE")});
  struct Row {
    const char* name;
    std::vector<ProbeTransportResult> results;
    int code;
  };
  const Row rows[] = {
      {"clean", {clean}, 0},
      {"rewritten", {rewritten}, 3},
      {"silent", {silent}, 1},
      {"nothing at all", {}, 1},
      {"clean udp, silent tcp", {clean, silent}, 0},
      {"rewritten udp, silent tcp", {rewritten, silent}, 3},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(probe_exit_code(row.results), row.code);
  }
}

TEST(ProbeOutput, JsonLineHasTheContractKeysInOrder) {
  auto line = probe_json_line(via_finding());
  EXPECT_EQ(line.find('\n'), std::string::npos);
  auto j = nlohmann::ordered_json::parse(line);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  EXPECT_EQ(keys, (std::vector<std::string>{"transport", "message", "direction", "field", "sent", "arrived"}));
  EXPECT_EQ(j["transport"], "udp");
  EXPECT_EQ(j["message"], "REGISTER");
  EXPECT_EQ(j["direction"], "there");
  EXPECT_EQ(j["field"], "Via");
  EXPECT_EQ(j["sent"], "SIP/2.0/UDP 10.77.1.2:40001");
  EXPECT_EQ(j["arrived"], "SIP/2.0/UDP 203.0.113.9:61000");
}

TEST(ProbeOutput, JsonLineSurvivesBytesThatAreNotUtf8) {
  auto f = via_finding();
  f.arrived = "SIP/2.0/UDP \xff\xfe:5060";
  auto j = nlohmann::json::parse(probe_json_line(f), nullptr, false);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_TRUE(j["arrived"].get<std::string>().starts_with("SIP/2.0/UDP "));
}

TEST(ProbeOutput, Text) {
  auto back = via_finding();
  back.direction = ProbeDirection::back;
  back.message = "200 (REGISTER)";
  back.sent = "a \"quoted\"\r\nvalue";
  ProbeFinding stripped{Transport::udp, "200 (OPTIONS)", ProbeDirection::back, "X-Sipwitness-Seal", "(present)",
                        "(absent)"};
  auto udp = transport(Transport::udp, {answered("REGISTER", {via_finding(), via_finding(), back}),
                                        unanswered("INVITE"), answered("OPTIONS", {stripped})});
  add_unanswered_findings(udp);
  ProbeTransportResult tcp;
  tcp.transport = Transport::tcp;
  tcp.target = "198.51.100.2:5060";
  tcp.error = "cannot connect: Connection refused";
  tcp.messages = {unanswered("REGISTER", false)};
  std::ostringstream out;
  format_probe_text({udp, tcp}, out);
  EXPECT_EQ(out.str(),
            "probe udp 198.51.100.2:5060 from 10.77.1.2:40001\n"
            "  REGISTER: 2 fields rewritten on the way there, 1 on the way back\n"
            "    [there] Via: sent \"SIP/2.0/UDP 10.77.1.2:40001\" arrived \"SIP/2.0/UDP 203.0.113.9:61000\"\n"
            "    [there] Via: sent \"SIP/2.0/UDP 10.77.1.2:40001\" arrived \"SIP/2.0/UDP 203.0.113.9:61000\"\n"
            "    [back] Via: sent \"a \\\"quoted\\\"\\r\\nvalue\" arrived \"SIP/2.0/UDP 203.0.113.9:61000\"\n"
            "  INVITE: no answer: dropped by the device?\n"
            "  OPTIONS: seal stripped on the way back\n"
            "    [back] X-Sipwitness-Seal: sent \"(present)\" arrived \"(absent)\"\n"
            "probe tcp 198.51.100.2:5060\n"
            "  cannot connect: Connection refused\n"
            "result: rewritten (exit 3); no answer on tcp\n");

  std::ostringstream clean;
  format_probe_text({transport(Transport::udp, {answered("OPTIONS")})}, clean);
  EXPECT_EQ(clean.str(),
            "probe udp 198.51.100.2:5060 from 10.77.1.2:40001\n"
            "  OPTIONS: nothing rewritten\n"
            "result: nothing rewritten (exit 0)\n");
}

// ---- over loopback sockets ------------------------------------------------------

// A stand-in for a sipwitness with lab.role outer on 127.0.0.1 (UDP and TCP on
// one port), answering probes the way the outer does. It can play a device that
// rewrites the Via on the way there or drops INVITEs.
class FakeOuter {
 public:
  struct Behaviour {
    bool drop_invite = false;
    bool rewrite_via = false;
    std::string_view key = kKey;
    bool relay = false;  // answers what is not a valid probe 200 OK, as an upstream would through an outer
  };
  explicit FakeOuter(Behaviour b) : behaviour_(b) {
    auto any = *Address::from_ip("127.0.0.1", 0);
    udp_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    EXPECT_EQ(::bind(udp_, any.sa(), any.len()), 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(udp_, reinterpret_cast<sockaddr*>(&ss), &len);
    port_ = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).port();
    tcp_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    ::setsockopt(tcp_, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    auto same = *Address::from_ip("127.0.0.1", port_);
    tcp_ok_ = ::bind(tcp_, same.sa(), same.len()) == 0 && ::listen(tcp_, 4) == 0;
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeOuter() {
    stop_ = true;
    thread_.join();
    for (int fd : {udp_, tcp_, conn_})
      if (fd >= 0) ::close(fd);
  }
  std::uint16_t port() const { return port_; }
  bool tcp_ok() const { return tcp_ok_; }
  int acks() const { return acks_; }
  int invites() const { return invites_; }

 private:
  // The answer to one message, or "" for none.
  std::string answer(std::string_view bytes, sip::Framing framing, const Address& source) {
    std::string arrived(bytes);
    if (behaviour_.rewrite_via) arrived = replace_in_header_lines(arrived, "Via:", "127.0.0.1", "192.0.2.1");
    auto m = sip::parse(arrived, framing);
    if (!m || !m->is_request) return {};
    if (m->method == "INVITE") ++invites_;
    auto check = diag::check_seal(*m, behaviour_.key);
    if (!check.probe || check.status == diag::SealCheck::Status::invalid) {
      if (!behaviour_.relay || m->method == "ACK") return {};
      auto plain = make_reply(*m, source, 200, "OK", {}, "secret");
      auto relayed = sip::parse(plain, framing);
      return relayed ? diag::add_seal(*relayed, behaviour_.key, "fedcba9876543210") : std::string();
    }
    if (m->method == "ACK") {
      ++acks_;
      return {};
    }
    if (m->method == "INVITE" && behaviour_.drop_invite) return {};
    auto reply = make_probe_answer(*m, source, check, "secret");
    auto parsed = sip::parse(reply, framing);
    return parsed ? diag::add_seal(*parsed, behaviour_.key, "fedcba9876543210") : std::string();
  }

  void loop() {
    std::string stream;
    Address peer;
    while (!stop_) {
      pollfd fds[3] = {{udp_, POLLIN, 0}, {tcp_, POLLIN, 0}, {conn_, POLLIN, 0}};
      if (::poll(fds, conn_ >= 0 ? 3 : 2, 20) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        char buf[65536];
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        auto n = ::recvfrom(udp_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &len);
        auto source = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&from));
        if (n > 0) {
          auto out = answer({buf, static_cast<std::size_t>(n)}, sip::Framing::datagram, source);
          if (!out.empty()) ::sendto(udp_, out.data(), out.size(), 0, source.sa(), source.len());
        }
      }
      if ((fds[1].revents & POLLIN) && conn_ < 0) {
        sockaddr_storage from{};
        socklen_t len = sizeof from;
        conn_ = ::accept4(tcp_, reinterpret_cast<sockaddr*>(&from), &len, SOCK_CLOEXEC);
        peer = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&from));
      }
      if (conn_ >= 0 && (fds[2].revents & (POLLIN | POLLHUP))) {
        char buf[16384];
        auto n = ::recv(conn_, buf, sizeof buf, 0);
        if (n <= 0) {
          ::close(conn_);
          conn_ = -1;
          stream.clear();
          continue;
        }
        stream.append(buf, static_cast<std::size_t>(n));
        while (auto framed = sip::frame_stream(stream)) {
          auto out = answer(std::string_view(stream).substr(0, *framed), sip::Framing::stream, peer);
          if (!out.empty()) ::send(conn_, out.data(), out.size(), MSG_NOSIGNAL);
          stream.erase(0, *framed);
        }
      }
    }
  }

  Behaviour behaviour_;
  int udp_ = -1, tcp_ = -1, conn_ = -1;
  std::uint16_t port_ = 0;
  bool tcp_ok_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<int> acks_{0};
  std::atomic<int> invites_{0};
  std::thread thread_;
};

ProbeOptions loopback(std::uint16_t port, std::vector<Transport> transports) {
  ProbeOptions o;
  o.target_host = "127.0.0.1";
  o.target_port = port;
  o.transports = std::move(transports);
  o.key = std::string(kKey);
  o.timeout = std::chrono::milliseconds(2000);
  return o;
}

TEST(ProbeRun, NothingRewrittenOverLoopback) {
  FakeOuter outer({});
  ASSERT_TRUE(outer.tcp_ok());
  std::ostringstream out, err;
  EXPECT_EQ(run_probe(loopback(outer.port(), {Transport::udp, Transport::tcp}), out, err), 0) << out.str() << err.str();
  auto text = out.str();
  EXPECT_NE(text.find("probe udp 127.0.0.1:" + std::to_string(outer.port()) + " from 127.0.0.1:"), std::string::npos);
  EXPECT_NE(text.find("probe tcp 127.0.0.1:"), std::string::npos);
  EXPECT_NE(text.find("  INVITE: nothing rewritten\n"), std::string::npos);
  EXPECT_TRUE(text.ends_with("result: nothing rewritten (exit 0)\n")) << text;
  EXPECT_EQ(err.str(), "");
  EXPECT_EQ(outer.acks(), 2);  // one per transport, after the 488
}

TEST(ProbeRun, RewritesAndADroppedInviteInJson) {
  FakeOuter outer({true, true});
  auto options = loopback(outer.port(), {Transport::udp});
  options.format = ProbeFormat::json;
  options.timeout = std::chrono::milliseconds(700);  // the INVITE waits this long
  std::ostringstream out, err;
  EXPECT_EQ(run_probe(options, out, err), 3) << err.str();
  std::istringstream lines(out.str());
  std::vector<nlohmann::json> findings;
  for (std::string line; std::getline(lines, line);) findings.push_back(nlohmann::json::parse(line));
  // Via rewritten on the way there for REGISTER and OPTIONS; the INVITE dropped.
  ASSERT_EQ(findings.size(), 3u) << out.str();
  EXPECT_EQ(findings[0]["message"], "REGISTER");
  EXPECT_EQ(findings[0]["field"], "Via");
  EXPECT_EQ(findings[0]["direction"], "there");
  EXPECT_TRUE(findings[0]["arrived"].get<std::string>().starts_with("SIP/2.0/UDP 192.0.2.1:"));
  EXPECT_EQ(findings[1]["message"], "INVITE");
  EXPECT_EQ(findings[1]["field"], "(message)");
  EXPECT_EQ(findings[2]["message"], "OPTIONS");
}

TEST(ProbeRun, AnotherKeyAtTheFarSideIsReportedAndNoInviteIsRelayed) {
  FakeOuter outer({false, false, "the outer's lab key, not the probe's", true});
  std::ostringstream out, err;
  EXPECT_EQ(run_probe(loopback(outer.port(), {Transport::udp}), out, err), 3) << out.str();
  auto text = out.str();
  EXPECT_NE(text.find("  REGISTER: seal not recognised on the way there; seal invalid on the way back\n"),
            std::string::npos) << text;
  EXPECT_NE(text.find("arrived \"invalid: the seal's mac does not verify"), std::string::npos) << text;
  EXPECT_NE(text.find("  INVITE: not sent: the far side relays probes instead of answering them\n"), std::string::npos)
      << text;
  EXPECT_EQ(outer.invites(), 0);
  EXPECT_NE(err.str().find("another lab key"), std::string::npos) << err.str();
}

TEST(ProbeRun, NoAnswerIsExitOneWithAReason) {
  // A UDP port nobody listens on: the kernel's port unreachable ends each wait early.
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto any = *Address::from_ip("127.0.0.1", 0);
  ASSERT_EQ(::bind(fd, any.sa(), any.len()), 0);
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  auto port = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss)).port();
  ::close(fd);
  std::ostringstream out, err;
  auto options = loopback(port, {Transport::udp, Transport::tcp});
  options.timeout = std::chrono::milliseconds(500);
  EXPECT_EQ(run_probe(options, out, err), 1);
  EXPECT_NE(err.str().find("not a sipwitness with lab.role outer"), std::string::npos) << err.str();
  EXPECT_NE(out.str().find("result: no answer (exit 1)"), std::string::npos) << out.str();
}

TEST(ProbeRun, UnusableOptionsAreExitTwo) {
  std::ostringstream out, err;
  auto options = loopback(5060, {Transport::udp});
  options.bind_ip = "not-an-ip";
  EXPECT_EQ(run_probe(options, out, err), 2);
  options = loopback(5060, {Transport::tls});
  EXPECT_EQ(run_probe(options, out, err), 2);
  options = loopback(5060, {Transport::udp});
  options.key.clear();
  EXPECT_EQ(run_probe(options, out, err), 2);
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace sw::proxy
