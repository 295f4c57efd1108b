#include "diag/alg_hints.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "test_messages.hpp"

// Single-point ALG hints, fed hand-built messages as sipwitness would receive
// them from a phone behind a NAT router: with the router's ALG rewriting
// (hints expected) and without (never a hint).
namespace sw::diag {
namespace {

using test::parse_ok;

constexpr std::string_view kLan = "192.168.1.10";    // the phone's private address
constexpr std::string_view kNat = "198.51.100.7";    // the router's public address (packet source)
constexpr std::string_view kPublicPhone = "203.0.113.20";

// ---- message builders ------------------------------------------------------

struct Msg {
  std::string start = "INVITE sip:2000@sip.example.com SIP/2.0";  // or "SIP/2.0 200 OK" for a response
  std::string method = "INVITE";
  std::vector<std::string> vias{"SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK-1"};
  std::string from = "<sip:1001@sip.example.com>;tag=ft1";
  std::string to = "<sip:2000@sip.example.com>";
  std::string call_id = "a84b4c76e66710@192.168.1.10";
  std::vector<std::string> contacts{"<sip:1001@192.168.1.10:5060>"};
  std::vector<std::string> auth;  // whole header lines, without CRLF
  std::string body;
  std::string content_type = "application/sdp";
  std::string content_encoding;
};

std::string text(const Msg& m) {
  std::string out = m.start + "\r\n";
  for (const auto& v : m.vias) out += "Via: " + v + "\r\n";
  out += "Max-Forwards: 70\r\nFrom: " + m.from + "\r\nTo: " + m.to + "\r\nCall-ID: " + m.call_id + "\r\nCSeq: 1 " +
         m.method + "\r\n";
  for (const auto& c : m.contacts) out += "Contact: " + c + "\r\n";
  for (const auto& a : m.auth) out += a + "\r\n";
  if (!m.body.empty()) out += "Content-Type: " + m.content_type + "\r\n";
  if (!m.content_encoding.empty()) out += "Content-Encoding: " + m.content_encoding + "\r\n";
  return out + "Content-Length: " + std::to_string(m.body.size()) + "\r\n\r\n" + m.body;
}

std::string sdp(std::string_view origin, std::string_view conn, std::string_view media_lines = "") {
  return "v=0\r\no=- 8000 8000 IN IP4 " + std::string(origin) + "\r\ns=-\r\nc=IN IP4 " + std::string(conn) +
         "\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n" + std::string(media_lines);
}

// A REGISTER from a phone behind the NAT as its router sends it on without an
// ALG: private addresses everywhere, answered with credentials.
Msg plain_nat_register() {
  Msg m;
  m.start = "REGISTER sip:sip.example.com SIP/2.0";
  m.method = "REGISTER";
  m.to = "<sip:1001@sip.example.com>";
  m.auth = {"Authorization: Digest username=\"1001\", realm=\"sip.example.com\", nonce=\"n1\", "
            "uri=\"sip:sip.example.com\", response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5"};
  return m;
}

// The same REGISTER after nf_nat_sip: Via and Contact carry the router's
// public address and port, the Call-ID still the phone's.
Msg alg_register() {
  Msg m = plain_nat_register();
  m.vias = {"SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK-1"};
  m.contacts = {"<sip:1001@198.51.100.7:5060>"};
  return m;
}

std::vector<AlgHint> hints(const Msg& m, std::string_view source = kNat) {
  return single_point_alg_hints(parse_ok(text(m)), source);
}

// "rule/field" per hint, in order: one comparison shows the whole answer.
std::vector<std::string> ids(const std::vector<AlgHint>& hs) {
  std::vector<std::string> out;
  out.reserve(hs.size());
  for (const auto& h : hs) out.push_back(h.rule + "/" + h.field);
  return out;
}

std::vector<std::string> ids(const Msg& m, std::string_view source = kNat) { return ids(hints(m, source)); }

const AlgHint* find(const std::vector<AlgHint>& hs, std::string_view rule, std::string_view field) {
  for (const auto& h : hs)
    if (h.rule == rule && h.field == field) return &h;
  return nullptr;
}

using Ids = std::vector<std::string>;

// ---- is_private_address -----------------------------------------------------

TEST(AlgHints, PrivateAddressRanges) {
  for (const char* ip : {"10.0.0.0", "10.255.255.255", "172.16.0.0", "172.20.1.1", "172.31.255.255", "192.168.0.1",
                         "192.168.255.255", "100.64.0.1", "100.64.0.0", "100.127.255.255", "169.254.0.1",
                         "169.254.255.255", "fc00::1", "fd00::1", "FD12:3456::1", "fe80::1", "febf:ffff::1",
                         "[fd00::1]", "fe80::1%eth0", "::ffff:192.168.1.10"})
    EXPECT_TRUE(is_private_address(ip)) << ip;
}

TEST(AlgHints, NotPrivateAddresses) {
  for (const char* ip : {"172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0", "192.167.255.255",
                         "192.169.0.0", "169.253.255.255", "169.255.0.0", "11.0.0.1", "9.255.255.255", "8.8.8.8",
                         "203.0.113.5", "2001:db8::1", "fbff::1", "fe00::1", "fec0::1", "::ffff:203.0.113.5"})
    EXPECT_FALSE(is_private_address(ip)) << ip;
}

TEST(AlgHints, LoopbackIsNotPrivate) {
  EXPECT_FALSE(is_private_address("127.0.0.1"));
  EXPECT_FALSE(is_private_address("127.255.255.254"));
  EXPECT_FALSE(is_private_address("::1"));
  EXPECT_FALSE(is_private_address("[::1]"));
  EXPECT_FALSE(is_private_address("0.0.0.0"));
  EXPECT_FALSE(is_private_address("::"));
}

TEST(AlgHints, MalformedOrNamesAreNotPrivate) {
  for (const char* ip : {"", "example.com", "10.0.0.256", "10.0.0", "10.0.0.1.2", "010.0.0.1", "10.0.0.01",
                         " 10.0.0.1", "10.0.0.1 ", "10.0.0.1:5060", "[10.0.0.1", "[10.0.0.1]", "[10.0.0.1]x",
                         "10..0.1", "1e.0.0.1",
                         "fd00::1::2", "fd00:::1", "[fd00::1", "fd00::1]", "fd0g::1", "10.0.0.-1", "1000.0.0.1",
                         "fd00::1%", "%eth0"})
    EXPECT_FALSE(is_private_address(ip)) << "\"" << ip << "\"";
}

// ---- ordinary traffic: never a hint -----------------------------------------

TEST(AlgHints, PlainNatWithoutAlgGivesNoHint) {
  EXPECT_EQ(ids(plain_nat_register()), Ids{});
  Msg invite;
  invite.body = sdp(kLan, kLan, "a=rtcp:4001 IN IP4 192.168.1.10\r\n");
  EXPECT_EQ(ids(invite), Ids{});
  EXPECT_EQ(ids(invite, ""), Ids{});
  // The phone's answer to an incoming call, and an in-dialog BYE whose Call-ID
  // the provider made.
  Msg ok = invite;
  ok.start = "SIP/2.0 200 OK";
  ok.to += ";tag=tt1";
  ok.call_id = "prov-77@10.0.0.5";
  EXPECT_EQ(ids(ok), Ids{});
  Msg bye;
  bye.start = "BYE sip:2000@203.0.113.5 SIP/2.0";
  bye.method = "BYE";
  bye.to += ";tag=tt1";
  bye.call_id = "prov-77@10.0.0.5";
  EXPECT_EQ(ids(bye), Ids{});
}

TEST(AlgHints, PublicPhoneGivesNoHint) {
  Msg m = plain_nat_register();
  m.vias = {"SIP/2.0/UDP 203.0.113.20:5060;branch=z9hG4bK-1"};
  m.from = "<sip:1001@203.0.113.20:5060>;tag=ft1";
  m.to = "<sip:1001@203.0.113.20:5060>";
  m.call_id = "a84b4c76e66710@203.0.113.20";
  m.contacts = {"<sip:1001@203.0.113.20:5060>"};
  EXPECT_EQ(ids(m, kPublicPhone), Ids{});
  EXPECT_EQ(ids(m, ""), Ids{});
  Msg invite = m;
  invite.start = "INVITE sip:2000@sip.example.com SIP/2.0";
  invite.method = "INVITE";
  invite.to = "<sip:2000@sip.example.com>";
  invite.body = sdp(kPublicPhone, kPublicPhone, "a=rtcp:4001 IN IP4 203.0.113.20\r\n");
  EXPECT_EQ(ids(invite, kPublicPhone), Ids{});
}

TEST(AlgHints, SippOnLoopbackGivesNoHint) {
  Msg m;
  m.start = "REGISTER sip:127.0.0.1:5070 SIP/2.0";
  m.method = "REGISTER";
  m.vias = {"SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1-0"};
  m.from = "sipp <sip:sipp@127.0.0.1:5061>;tag=1";
  m.to = "sut <sip:sipp@127.0.0.1:5070>";
  m.call_id = "1-4242@127.0.0.1";
  m.contacts = {"sip:sipp@127.0.0.1:5061"};
  m.auth = {"Authorization: Digest username=\"sipp\", realm=\"lab\", nonce=\"n\", uri=\"sip:127.0.0.1:5070\", "
            "response=\"0123456789abcdef0123456789abcdef\""};
  EXPECT_EQ(ids(m, "127.0.0.1"), Ids{});
  Msg invite = m;
  invite.start = "INVITE sip:service@127.0.0.1:5070 SIP/2.0";
  invite.method = "INVITE";
  invite.body = sdp("127.0.0.1", "127.0.0.1", "a=rtcp:6001 IN IP4 127.0.0.1\r\n");
  EXPECT_EQ(ids(invite, "127.0.0.1"), Ids{});
}

TEST(AlgHints, RelayedRequestGivesNoHint) {
  // A proxy in front of sipwitness (with nathelper, say) fixed the Contact
  // itself; the top Via and the source are the proxy's.
  Msg m = alg_register();
  m.from = "<sip:1001@198.51.100.7:5060>;tag=ft1";
  m.vias = {"SIP/2.0/UDP 198.51.100.99:5060;branch=z9hG4bK-p1",
            "SIP/2.0/UDP 192.168.1.10:5060;received=198.51.100.7;rport=5060;branch=z9hG4bK-1"};
  EXPECT_EQ(ids(m, "198.51.100.99"), Ids{});
  m.vias = {"SIP/2.0/UDP 198.51.100.99:5060;branch=z9hG4bK-p1, SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1"};
  EXPECT_EQ(ids(m, "198.51.100.99"), Ids{});
}

// ---- rule 1: digest uri= and Request-URI ------------------------------------

TEST(AlgHints, DigestUriPrivateWhereRequestUriPublic) {
  Msg m;
  m.start = "INVITE sip:2000@198.51.100.50:5060 SIP/2.0";
  m.vias = {"SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK-1"};
  m.auth = {"Proxy-Authorization: Digest username=\"1001\", realm=\"sip.example.com\", nonce=\"n1\", "
            "uri=\"sip:2000@192.168.1.50\", response=\"0123456789abcdef0123456789abcdef\""};
  auto hs = hints(m);
  EXPECT_EQ(ids(hs), Ids{"digest_uri_differs/Request-URI"});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_EQ(hs[0].observed, "sip:2000@198.51.100.50:5060");
  EXPECT_NE(hs[0].evidence.find("198.51.100.50"), std::string::npos) << hs[0].evidence;
  EXPECT_NE(hs[0].evidence.find("192.168.1.50"), std::string::npos) << hs[0].evidence;
  EXPECT_NE(hs[0].evidence.find("Proxy-Authorization"), std::string::npos) << hs[0].evidence;
}

TEST(AlgHints, DigestUriPublicWhereRequestUriPrivate) {
  Msg m;
  m.start = "INVITE sip:2000@192.168.1.50 SIP/2.0";
  m.auth = {"Authorization: Digest username=\"1001\", realm=\"sip.example.com\", nonce=\"n1\", "
            "uri=\"sip:2000@198.51.100.50:5060\", response=\"0123456789abcdef0123456789abcdef\""};
  auto hs = hints(m);
  EXPECT_EQ(ids(hs), Ids{"digest_uri_differs/Authorization uri="});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_EQ(hs[0].observed, "sip:2000@198.51.100.50:5060");
}

TEST(AlgHints, DigestUriOtherDifferencesAreNotAlgHints) {
  auto with = [](const std::string& ruri, const std::string& uri) {
    Msg m;
    m.start = "INVITE " + ruri + " SIP/2.0";
    m.auth = {"Authorization: Digest username=\"1001\", realm=\"r\", nonce=\"n1\", uri=\"" + uri +
              "\", response=\"0123456789abcdef0123456789abcdef\""};
    return ids(m);
  };
  EXPECT_EQ(with("sip:2000@203.0.113.5", "sip:2000@sip.example.com"), Ids{});  // domain vs IP
  EXPECT_EQ(with("sip:2000@sip.example.com", "sip:2000@192.168.1.50"), Ids{});
  EXPECT_EQ(with("sip:2000@203.0.113.5", "sip:2000@203.0.113.5:5060"), Ids{});  // an added port
  EXPECT_EQ(with("sip:2000@203.0.113.5", "sip:2000@203.0.113.6"), Ids{});       // both public
  EXPECT_EQ(with("sip:2000@192.168.1.5", "sip:2000@192.168.1.6"), Ids{});       // both private
  EXPECT_EQ(with("sip:2000@203.0.113.5", "sip:3000@192.168.1.50"), Ids{});      // another user too
  EXPECT_EQ(with("sip:2000@203.0.113.5", "sip:2000@192.168.1.50;transport=tcp"), Ids{});
  EXPECT_EQ(with("sip:2000@203.0.113.5", "sips:2000@192.168.1.50"), Ids{});
  EXPECT_EQ(with("sip:2000@127.0.0.1", "sip:2000@192.168.1.50"), Ids{});  // loopback is neither
  EXPECT_EQ(with("sip:2000@[2001:db8::5]", "sip:2000@192.168.1.50"), Ids{});
  EXPECT_EQ(with("sip:2000@203.0.113.5", "not a uri"), Ids{});
  EXPECT_EQ(with("sip:2000@203.0.113.5", "sip:2000@203.0.113.5"), Ids{});
}

TEST(AlgHints, DigestUriRuleNeedsDigestCredentials) {
  Msg m;
  m.start = "INVITE sip:2000@198.51.100.50 SIP/2.0";
  m.auth = {"Authorization: Basic dXNlcjpwYXNz",
            "Authorization: Digest username=\"1001\", uri=\"sip:2000@192.168.1.50"};  // unterminated quote
  EXPECT_EQ(ids(m), Ids{});
}

// ---- rule 2: a rewritten address next to one an ALG leaves alone ------------

TEST(AlgHints, PublicViaAndContactPrivateCallId) {
  auto hs = hints(alg_register());
  EXPECT_EQ(ids(hs), (Ids{"public_via_private_callid/Via", "public_contact_private_callid/Contact"}));
  const auto* contact = find(hs, "public_contact_private_callid", "Contact");
  ASSERT_NE(contact, nullptr);
  EXPECT_EQ(contact->observed, "<sip:1001@198.51.100.7:5060>");
  EXPECT_NE(contact->evidence.find("198.51.100.7"), std::string::npos) << contact->evidence;
  EXPECT_NE(contact->evidence.find("192.168.1.10"), std::string::npos) << contact->evidence;
  const auto* via = find(hs, "public_via_private_callid", "Via");
  ASSERT_NE(via, nullptr);
  EXPECT_EQ(via->observed, "SIP/2.0/UDP 198.51.100.7:5060;rport;branch=z9hG4bK-1");
  // Unknown source: the same signs.
  EXPECT_EQ(ids(alg_register(), ""), (Ids{"public_via_private_callid/Via", "public_contact_private_callid/Contact"}));
}

TEST(AlgHints, CallIdHostForms) {
  Msg m = alg_register();
  m.call_id = "a84b4c76e66710@192.168.1.10:5060";
  EXPECT_EQ(ids(m).size(), 2u);
  for (const char* call_id : {"a84b4c76e66710", "a84b4c76e66710@pc33.example.com", "a84b4c76e66710@198.51.100.7",
                              "a84b4c76e66710@127.0.0.1", "a84b4c76e66710@", "@", "x@[fd00::1]", "x@fd00::1",
                              "x@192.168.1.10@x"}) {
    m.call_id = call_id;
    EXPECT_EQ(ids(m), Ids{}) << call_id;
  }
}

TEST(AlgHints, CallIdCountsOnlyOutOfDialog) {
  // In a dialog the Call-ID may be the other side's (the provider's private
  // network): a phone that knows its public address must give no hint.
  Msg bye;
  bye.start = "BYE sip:2000@203.0.113.5 SIP/2.0";
  bye.method = "BYE";
  bye.to += ";tag=tt1";
  bye.call_id = "prov-77@10.0.0.5";
  bye.vias = {"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1"};
  bye.contacts = {"<sip:1001@198.51.100.7:5060>"};
  EXPECT_EQ(ids(bye), Ids{});
  // A response's Call-ID is never the phone's own evidence either.
  Msg ok = bye;
  ok.start = "SIP/2.0 200 OK";
  ok.method = "INVITE";
  ok.body = sdp(kNat, kNat);
  EXPECT_EQ(ids(ok), Ids{});
}

TEST(AlgHints, PublicSdpPrivateCallId) {
  Msg m = alg_register();
  m.start = "INVITE sip:2000@sip.example.com SIP/2.0";
  m.method = "INVITE";
  m.auth.clear();
  m.body = sdp(kNat, kNat);
  EXPECT_EQ(ids(m), (Ids{"public_via_private_callid/Via", "public_contact_private_callid/Contact",
                         "public_sdp_private_callid/SDP c="}));
  auto hs = hints(m);
  const auto* c = find(hs, "public_sdp_private_callid", "SDP c=");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->observed, "IN IP4 198.51.100.7");
}

TEST(AlgHints, PublicSdpPrivateRtcp) {
  Msg m;  // signalling untouched (an ALG that rewrites the SDP only)
  m.call_id = "a84b4c76e66710";
  m.body = sdp(kNat, kNat, "a=rtcp:4001 IN IP4 192.168.1.10\r\n");
  auto hs = hints(m);
  EXPECT_EQ(ids(hs), Ids{"public_c_private_rtcp/SDP c="});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_NE(hs[0].evidence.find("a=rtcp"), std::string::npos) << hs[0].evidence;
  // The phone's 200 OK to an incoming call, through the same router.
  Msg ok = m;
  ok.start = "SIP/2.0 200 OK";
  ok.to += ";tag=tt1";
  EXPECT_EQ(ids(ok), Ids{"public_c_private_rtcp/SDP c="});
  // a=rtcp with a port only, or a public address: nothing.
  m.body = sdp(kNat, kNat, "a=rtcp:4001\r\n");
  EXPECT_EQ(ids(m), Ids{});
  m.body = sdp(kNat, kNat, "a=rtcp:4001 IN IP4 198.51.100.7\r\n");
  EXPECT_EQ(ids(m), Ids{});
}

TEST(AlgHints, PublicSdpNotAmongIceCandidates) {
  Msg m;
  m.call_id = "a84b4c76e66710";
  m.body = sdp(kNat, kNat, "a=candidate:1 1 UDP 2130706431 192.168.1.10 4000 typ host\r\n");
  EXPECT_EQ(ids(m), Ids{"public_c_private_candidate/SDP c="});
}

TEST(AlgHints, IcePhoneThatLearnedItsAddressGivesNoHint) {
  // ICE behind plain NAT: c= is the server-reflexive candidate, the host
  // candidate and even o= are private. The phone wrote all of it.
  Msg m;
  m.call_id = "a84b4c76e66710@192.168.1.10";
  m.body = sdp(kLan, kNat,
               "a=rtcp:4001 IN IP4 192.168.1.10\r\n"
               "a=candidate:1 1 UDP 2130706431 192.168.1.10 4000 typ host\r\n"
               "a=candidate:2 1 UDP 1694498815 198.51.100.7 61000 typ srflx raddr 192.168.1.10 rport 4000\r\n");
  EXPECT_EQ(ids(m), Ids{});
  // mDNS host candidates name no address.
  m.body = sdp(kLan, kLan, "a=candidate:1 1 UDP 2130706431 3f1c6b1e-1.local 4000 typ host\r\n");
  EXPECT_EQ(ids(m), Ids{});
}

TEST(AlgHints, OriginAndConnectionDisagree) {
  Msg m;
  m.call_id = "a84b4c76e66710";
  m.body = sdp(kLan, kNat);
  auto hs = hints(m);
  EXPECT_EQ(ids(hs), Ids{"public_c_private_o/SDP c="});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_NE(hs[0].evidence.find("o= still names private 192.168.1.10"), std::string::npos) << hs[0].evidence;
  m.body = sdp(kNat, kLan);
  hs = hints(m);
  EXPECT_EQ(ids(hs), Ids{"public_o_private_c/SDP o="});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_EQ(hs[0].observed, "- 8000 8000 IN IP4 198.51.100.7");
}

TEST(AlgHints, SdpWitnessesGiveOneHintEach) {
  Msg m = alg_register();
  m.start = "INVITE sip:2000@sip.example.com SIP/2.0";
  m.method = "INVITE";
  m.auth.clear();
  m.body = sdp(kLan, kNat,
               "a=rtcp:4001 IN IP4 192.168.1.10\r\n"
               "a=candidate:1 1 UDP 2130706431 192.168.1.10 4000 typ host\r\n"
               "m=video 4002 RTP/AVP 96\r\nc=IN IP4 198.51.100.7\r\na=rtcp:4003 IN IP4 192.168.1.10\r\n");
  EXPECT_EQ(ids(m), (Ids{"public_via_private_callid/Via", "public_contact_private_callid/Contact",
                         "public_sdp_private_callid/SDP c=", "public_c_private_rtcp/SDP c=",
                         "public_c_private_candidate/SDP c=", "public_c_private_o/SDP c="}));
}

TEST(AlgHints, SdpOnlyWhenTheBodyIsSdp) {
  Msg m;
  m.call_id = "a84b4c76e66710";
  m.body = sdp(kLan, kNat);
  m.content_type = "text/plain";
  EXPECT_EQ(ids(m), Ids{});
  m.content_type = "Application/SDP; charset=utf-8";
  EXPECT_EQ(ids(m), Ids{"public_c_private_o/SDP c="});
  m.content_encoding = "gzip";
  EXPECT_EQ(ids(m), Ids{});
}

TEST(AlgHints, Ipv6AddressesTakeNoPartInCrossFieldRules) {
  // A dual-stack phone: a global IPv6 address in Via and Contact, its LAN IPv4
  // address in the Call-ID. No NAT, no ALG.
  Msg m = plain_nat_register();
  m.vias = {"SIP/2.0/UDP [2001:db8::10]:5060;branch=z9hG4bK-1"};
  m.contacts = {"<sip:1001@[2001:db8::10]:5060>"};
  m.from = "<sip:1001@[2001:db8::10]:5060>;tag=ft1";
  EXPECT_EQ(ids(m, "2001:db8::10"), Ids{});
  EXPECT_EQ(ids(m, "2001:db8::99"), Ids{});  // a temporary source address
  Msg invite;
  invite.call_id = "x@192.168.1.10";
  invite.body = "v=0\r\no=- 1 1 IN IP6 fd00::10\r\ns=-\r\nc=IN IP6 2001:db8::10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
  EXPECT_EQ(ids(invite), Ids{});
}

// ---- rule 3: sent-by is not where the packet came from ----------------------

TEST(AlgHints, PublicSentByIsNotTheSource) {
  Msg m = plain_nat_register();
  m.vias = {"SIP/2.0/UDP 198.51.100.99:5060;branch=z9hG4bK-1"};
  m.call_id = "a84b4c76e66710";
  auto hs = hints(m, kNat);
  EXPECT_EQ(ids(hs), Ids{"via_sent_by_not_source/Via"});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_NE(hs[0].evidence.find("198.51.100.99"), std::string::npos) << hs[0].evidence;
  EXPECT_NE(hs[0].evidence.find("198.51.100.7"), std::string::npos) << hs[0].evidence;
  EXPECT_EQ(ids(m, "::ffff:198.51.100.7"), Ids{"via_sent_by_not_source/Via"});
}

TEST(AlgHints, PublicSentByIsNotReceived) {
  Msg m = plain_nat_register();
  m.vias = {"SIP/2.0/UDP 198.51.100.99:5060;received=198.51.100.7;branch=z9hG4bK-1"};
  m.call_id = "a84b4c76e66710";
  auto hs = hints(m, "");
  EXPECT_EQ(ids(hs), Ids{"via_sent_by_not_source/Via"});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_NE(hs[0].evidence.find("received=198.51.100.7"), std::string::npos) << hs[0].evidence;
  // received= is what the first hop saw: it wins over our own source.
  m.vias = {"SIP/2.0/UDP 198.51.100.99:5060;received=198.51.100.99;branch=z9hG4bK-1"};
  EXPECT_EQ(ids(m, kNat), Ids{});
}

TEST(AlgHints, SentByRuleNegatives) {
  Msg m = plain_nat_register();
  m.call_id = "a84b4c76e66710";
  m.vias = {"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1"};  // equal to the source
  EXPECT_EQ(ids(m, kNat), Ids{});
  m.vias = {"SIP/2.0/UDP 198.51.100.99:5060;branch=z9hG4bK-1"};
  EXPECT_EQ(ids(m, ""), Ids{});          // source unknown
  EXPECT_EQ(ids(m, "10.0.0.1"), Ids{});  // a private source: sipwitness is behind a SNAT, not the phone
  EXPECT_EQ(ids(m, "not-an-ip"), Ids{});
  m.vias = {"SIP/2.0/UDP 192.0.0.4:5060;branch=z9hG4bK-1"};  // a 464XLAT phone's CLAT address
  EXPECT_EQ(ids(m, kNat), Ids{});
  m.vias = {"SIP/2.0/UDP phone.example.com:5060;branch=z9hG4bK-1"};
  EXPECT_EQ(ids(m, kNat), Ids{});
  m.vias = {"SIP/2.0/UDP 198.51.100.99:5060;received=phone;branch=z9hG4bK-1"};
  EXPECT_EQ(ids(m, kNat), Ids{});
  // A response's top Via is sipwitness's own.
  Msg ok;
  ok.start = "SIP/2.0 200 OK";
  ok.to += ";tag=tt1";
  ok.vias = {"SIP/2.0/UDP 203.0.113.1:5060;received=198.51.100.99;branch=z9hG4bK-sw"};
  EXPECT_EQ(ids(ok, kNat), Ids{});
}

// ---- rule 4: the NAT address with a port in From/To -------------------------

TEST(AlgHints, NatTupleInFromAndTo) {
  // The phone wrote its own address (no port) in From and To; nf_nat_sip
  // replaced it with the NAT's address and port, as it did in Via and Contact.
  Msg m = alg_register();
  m.from = "<sip:1001@198.51.100.7:5060>;tag=ft1";
  m.to = "<sip:1001@198.51.100.7:5060>";
  auto hs = hints(m);
  EXPECT_EQ(ids(hs), (Ids{"public_via_private_callid/Via", "public_contact_private_callid/Contact",
                          "nat_tuple_in_from_to/From", "nat_tuple_in_from_to/To"}));
  const auto* from = find(hs, "nat_tuple_in_from_to", "From");
  ASSERT_NE(from, nullptr);
  EXPECT_EQ(from->observed, "<sip:1001@198.51.100.7:5060>;tag=ft1");
  EXPECT_NE(from->evidence.find("198.51.100.7:5060"), std::string::npos) << from->evidence;
  EXPECT_NE(from->evidence.find("Via sent-by"), std::string::npos) << from->evidence;
  EXPECT_NE(from->evidence.find("192.168.1.10"), std::string::npos) << from->evidence;
}

TEST(AlgHints, NatTupleMatchesThePacketSource) {
  // Via left alone (private), From rewritten; the Contact still private.
  Msg m = plain_nat_register();
  m.call_id = "a84b4c76e66710";
  m.from = "<sip:1001@198.51.100.7:5060>;tag=ft1";
  auto hs = hints(m);
  EXPECT_EQ(ids(hs), Ids{"nat_tuple_in_from_to/From"});
  ASSERT_EQ(hs.size(), 1u);
  EXPECT_NE(hs[0].evidence.find("packet source"), std::string::npos) << hs[0].evidence;
  EXPECT_EQ(ids(m, ""), Ids{});  // no source, private Via: no NAT address to match
}

TEST(AlgHints, NatTupleNegatives) {
  Msg m = plain_nat_register();
  m.from = "<sip:1001@198.51.100.7>;tag=ft1";  // no port: the phone's own writing
  EXPECT_EQ(ids(m), Ids{});
  m.from = "<sip:1001@198.51.100.8:5060>;tag=ft1";  // not the NAT's address
  EXPECT_EQ(ids(m), Ids{});
  m.from = "<sip:1001@198.51.100.7:5060>;tag=ft1";
  m.to += ";tag=tt1";  // in a dialog From/To may be the provider's writing
  EXPECT_EQ(ids(m), Ids{});
  // Nothing private left in the message: a phone that knows its public address.
  Msg pub = alg_register();
  pub.from = "<sip:1001@198.51.100.7:5060>;tag=ft1";
  pub.call_id = "a84b4c76e66710";
  EXPECT_EQ(ids(pub), Ids{});
}

// ---- robustness and formatting ----------------------------------------------

TEST(AlgHints, MessageWithoutSdp) {
  Msg m;
  m.call_id = "a84b4c76e66710";
  m.vias = {"SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bK-1"};
  m.contacts = {"<sip:1001@198.51.100.7:5060>"};
  EXPECT_EQ(ids(m), Ids{});
  m.contacts.clear();
  EXPECT_EQ(ids(m), Ids{});
}

TEST(AlgHints, OddSdpLinesDoNotCrash) {
  Msg m;
  m.call_id = "a84b4c76e66710";
  m.body = std::string(
      "v=0\r\n=\r\nx\r\no=\r\no=- 1 1 IN IP4\r\nc=\r\nc=IN\r\nc=IN IP4\r\nc=IN IP4 999.1.1.1\r\n"
      "c=IN IP4 198.51.100.7/127/3\r\nc=IN IP6 192.168.1.10\r\na=rtcp:\r\na=rtcp:abc IN IP4\r\na=rtcp: IN IP4 \r\n"
      "a=candidate:\r\na=candidate:1 1 UDP 1 192.168.1.10 4000 typ\r\n"
      "a=candidate:1 1 UDP 1 192.168.1.10 4000 host x\r\n"
      "a=candidate:1 1 UDP 1 [192.168.1.10] 4000 typ host\r\n\n\n\r\r\n\t\r\n") +
           std::string(3000, 'a') + "\r\nc=IN IP4 \xff\xfe\r\nm=audio\r\n" +
           "o=- 1 1 IN IP4 192.168.1.10";  // no final line break
  // The malformed lines are skipped; what is left is one public c= (with a
  // multicast-style /ttl) and the private o= on the last, unterminated line.
  EXPECT_EQ(ids(m), Ids{"public_c_private_o/SDP c="});
  m.body = "\r\n";
  EXPECT_EQ(ids(m), Ids{});
  m.body = "c=IN IP4 198.51.100.7\r\na=candidate:1 1 UDP 1 192.168.1.10 4000 typ host";
  EXPECT_EQ(ids(m), Ids{"public_c_private_candidate/SDP c="});
}

TEST(AlgHints, OneHintPerRuleAndField) {
  Msg m = alg_register();
  m.contacts = {"<sip:1001@198.51.100.7:5060>, <sip:1001@198.51.100.7:5062>", "<sip:1001@198.51.100.7:5064>"};
  m.auth.push_back(m.auth.front());
  EXPECT_EQ(ids(m), (Ids{"public_via_private_callid/Via", "public_contact_private_callid/Contact"}));
}

TEST(AlgHints, ObservedIsBounded) {
  Msg m = alg_register();
  m.contacts = {"<sip:1001@198.51.100.7:5060;x=" + std::string(400, 'y') + ">"};
  auto hs = hints(m);
  const auto* contact = find(hs, "public_contact_private_callid", "Contact");
  ASSERT_NE(contact, nullptr);
  EXPECT_EQ(contact->observed.size(), kMaxObserved + 3);
  EXPECT_TRUE(contact->observed.ends_with("...")) << contact->observed;
}

TEST(AlgHints, ToText) {
  auto hs = hints(alg_register());
  const auto* contact = find(hs, "public_contact_private_callid", "Contact");
  ASSERT_NE(contact, nullptr);
  EXPECT_EQ(to_text(*contact), "Contact: <sip:1001@198.51.100.7:5060> (" + contact->evidence + ")");
  EXPECT_EQ(to_text(AlgHint{"r", "Via", "a\r\nb", "c\nd"}), "Via: a??b (c?d)");
}

}  // namespace
}  // namespace sw::diag
