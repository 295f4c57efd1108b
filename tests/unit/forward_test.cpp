#include "proxy/forward.hpp"

#include <gtest/gtest.h>

#include "proxy/edit_list.hpp"
#include "proxy/sip/text.hpp"
#include "test_messages.hpp"

namespace sw::proxy {
namespace {

using test::parse_ok;
using test::sip_text;

const std::string kSdp =
    "v=0\r\no=1001 123 456 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0\r\n";

std::string invite(std::string_view extra_via = "", std::string_view route = "") {
  std::string via = "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport";
  std::string text = "INVITE sip:2002@provider.example SIP/2.0\r\n" + via + "\r\n";
  if (!extra_via.empty()) text += std::string(extra_via) + "\r\n";
  if (!route.empty()) text += std::string(route) + "\r\n";
  text +=
      "Max-Forwards: 70\r\n"
      "To: <sip:2002@provider.example>\r\n"
      "From: \"Alice\" <sip:1001@provider.example>;tag=1928301774\r\n"
      "Call-ID: a84b4c76e66710@pc33\r\n"
      "CSeq: 314159 INVITE\r\n"
      "Contact: <sip:1001@192.168.1.10:5060>\r\n"
      "Proxy-Authorization: Digest username=\"1001\", realm=\"provider.example\",\r\n"
      "  nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:2002@provider.example\",\r\n"
      "  response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5\r\n"
      "Authorization: Digest username=\"1001\",realm=\"other\",nonce=\"x\",uri=\"sip:a\",response=\"0\"\r\n"
      "X-Unknown-Header:   odd   spacing ;;,, \r\n"
      "Content-Type: application/sdp\r\n"
      "Content-Length: " +
      std::to_string(kSdp.size()) + "\r\n\r\n" + kSdp;
  return text;
}

const Address kPhone = *Address::from_ip("203.0.113.7", 40000);
const LocalEndpoint kUdpEp{Transport::udp, "198.51.100.1", 5060};
const LocalEndpoint kTcpEp{Transport::tcp, "198.51.100.1", 5060};

RequestEdits simple_edits(const Flow& inbound) {
  RequestEdits how;
  how.out = kUdpEp;
  how.in = kUdpEp;
  how.inbound = &inbound;
  return how;
}

// The whole header line (with its continuation lines) that starts with a name.
std::string_view header_line(std::string_view text, std::string_view starts_with) {
  auto pos = text.find(starts_with);
  if (pos == std::string_view::npos) return {};
  auto end = text.find("\r\n", pos);
  while (end != std::string_view::npos && end + 2 < text.size() && (text[end + 2] == ' ' || text[end + 2] == '\t'))
    end = text.find("\r\n", end + 2);
  return text.substr(pos, end - pos);
}

TEST(Forward, CredentialsSdpAndUnknownHeadersLeaveByteIdentical) {
  auto text = invite();
  auto m = parse_ok(text);
  Flow in{Transport::udp, kPhone, 0};
  auto how = simple_edits(in);
  how.record_route = true;
  auto out = forward_request(m, kPhone, how);
  for (auto name : {"Proxy-Authorization:", "Authorization: Digest", "X-Unknown-Header:", "Contact:", "From:",
                    "To:", "Call-ID:", "CSeq:", "Content-Type:", "Content-Length:"}) {
    SCOPED_TRACE(name);
    auto original = header_line(text, name);
    ASSERT_FALSE(original.empty());
    EXPECT_EQ(header_line(out, name), original);
  }
  // The body is the tail, unchanged.
  ASSERT_GE(out.size(), kSdp.size());
  EXPECT_EQ(out.substr(out.size() - kSdp.size()), kSdp);
  // And the forwarded message is itself valid SIP.
  auto reparsed = parse_ok(out);
  EXPECT_EQ(reparsed.body, kSdp);
}

TEST(Forward, OnlyTheListedEditsHappen) {
  auto text = invite();
  auto m = parse_ok(text);
  Flow in{Transport::udp, kPhone, 0};
  auto out = forward_request(m, kPhone, simple_edits(in));
  auto branch = compute_branch(m);
  std::string expected = text;
  // Our Via on top.
  expected.insert(expected.find("Via:"), "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=" + branch + "\r\n");
  // rport filled in and received added on the sender's Via.
  auto rport = expected.find(";rport") + 6;
  expected.insert(rport, "=40000;received=203.0.113.7");
  // Max-Forwards decremented.
  expected.replace(expected.find("Max-Forwards: 70"), 16, "Max-Forwards: 69");
  EXPECT_EQ(out, expected);
}

TEST(Forward, ViaRulesForReceivedAndRport) {
  struct Row {
    std::string via;
    std::string expected;
  };
  const Row rows[] = {
      // Sent-by matches the source, no rport: untouched (RFC 3261 18.2.1).
      {"SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bKa", "SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bKa"},
      // Private address behind NAT: received added.
      {"SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;received=203.0.113.7"},
      // rport without value: filled in, and received always added (RFC 3581 4).
      {"SIP/2.0/UDP 203.0.113.7:5060;rport;branch=z9hG4bKa",
       "SIP/2.0/UDP 203.0.113.7:5060;rport=40000;branch=z9hG4bKa;received=203.0.113.7"},
      // A hostname sent-by.
      {"SIP/2.0/TCP phone.example;branch=z9hG4bKa", "SIP/2.0/TCP phone.example;branch=z9hG4bKa;received=203.0.113.7"},
      // Parameter names are case-insensitive; "rportx" is not rport.
      {"SIP/2.0/UDP 203.0.113.7:5060;RPORT", "SIP/2.0/UDP 203.0.113.7:5060;RPORT=40000;received=203.0.113.7"},
      {"SIP/2.0/UDP 203.0.113.7:40000;rportx", "SIP/2.0/UDP 203.0.113.7:40000;rportx"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.via);
    EXPECT_EQ(via_with_received(row.via, kPhone), row.expected);
  }
}

TEST(Forward, OurViaNamesTheInboundSocketAndConnection) {
  auto m = parse_ok(invite());
  Flow in{Transport::tcp, kPhone, 42, 1};
  auto out = parse_ok(forward_request(m, kPhone, simple_edits(in)));
  auto top = sip::parse_via(sip::top_via(out));
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(sip::find_param(top->params, "swl"), "1");
  EXPECT_EQ(sip::find_param(top->params, "swc"), "42");
}

TEST(Forward, MaxForwardsAddedWhenAbsent) {
  auto text = sip_text({"OPTIONS sip:x@provider.example SIP/2.0", "Via: SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK1",
                        "To: <sip:x@provider.example>", "From: <sip:y@provider.example>;tag=1", "Call-ID: mf1",
                        "CSeq: 1 OPTIONS", "Content-Length: 0"});
  Flow in{Transport::udp, kPhone, 0};
  auto out = parse_ok(forward_request(parse_ok(text), kPhone, simple_edits(in)));
  EXPECT_EQ(out.value(sip::HeaderId::MaxForwards), "70");
}

TEST(Forward, BranchIsStableForRetransmissionCancelAndNon2xxAck) {
  auto text = invite();
  auto inv = parse_ok(text);
  auto retransmission = parse_ok(std::string(text));
  EXPECT_EQ(compute_branch(inv), compute_branch(retransmission));
  EXPECT_TRUE(compute_branch(inv).starts_with("z9hG4bKsw"));

  // CANCEL: same Request-URI, top Via, Call-ID, From, CSeq number; method differs.
  auto cancel = sip_text({"CANCEL sip:2002@provider.example SIP/2.0",
                          "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport",
                          "Max-Forwards: 70", "To: <sip:2002@provider.example>",
                          "From: \"Alice\" <sip:1001@provider.example>;tag=1928301774",
                          "Call-ID: a84b4c76e66710@pc33", "CSeq: 314159 CANCEL", "Content-Length: 0"});
  EXPECT_EQ(compute_branch(parse_ok(cancel)), compute_branch(inv));
  // ACK for a non-2xx final response carries the To tag of that response.
  auto ack = sip_text({"ACK sip:2002@provider.example SIP/2.0",
                       "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport", "Max-Forwards: 70",
                       "To: <sip:2002@provider.example>;tag=8321234356",
                       "From: \"Alice\" <sip:1001@provider.example>;tag=1928301774", "Call-ID: a84b4c76e66710@pc33",
                       "CSeq: 314159 ACK", "Content-Length: 0"});
  EXPECT_EQ(compute_branch(parse_ok(ack)), compute_branch(inv));
  // A new transaction (new client branch) gets a new branch.
  auto other = text;
  other.replace(other.find("z9hG4bK776asdhds"), 16, "z9hG4bK776asdhdX");
  EXPECT_NE(compute_branch(parse_ok(other)), compute_branch(inv));
}

TEST(Forward, LoopIsDetectedButSpiralIsNot) {
  std::vector<LocalEndpoint> ours{kUdpEp};
  auto first = parse_ok(invite());
  EXPECT_FALSE(is_looped(first, ours));
  // The same request comes back with our Via under someone else's.
  auto our_via = "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=" + compute_branch(first);
  auto looped_text = invite(our_via);
  looped_text.replace(0, looped_text.find("\r\n"), "INVITE sip:2002@provider.example SIP/2.0");
  auto looped = parse_ok(looped_text);
  EXPECT_TRUE(is_looped(looped, ours));
  // A spiral: same Via of ours, but the Request-URI was retargeted.
  auto spiral_text = looped_text;
  spiral_text.replace(0, spiral_text.find("\r\n"), "INVITE sip:voicemail@provider.example SIP/2.0");
  EXPECT_FALSE(is_looped(parse_ok(spiral_text), ours));
  // An in-dialog request passing through us twice (phone A -> us -> a
  // record-routing provider -> us -> phone B): same Request-URI, Call-ID, tags
  // and CSeq, but the route set has moved on, so it is a spiral.
  auto bye = [&](std::string_view vias, std::string_view route) {
    return sip_text({"BYE sip:b@10.0.0.9:5060 SIP/2.0", vias, route, "To: <sip:b@p>;tag=t", "From: <sip:a@p>;tag=f",
                     "Call-ID: spiral", "CSeq: 2 BYE", "Max-Forwards: 70", "Content-Length: 0"});
  };
  auto first_pass = parse_ok(bye("Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKa",
                                 "Route: <sip:198.51.100.1:5060;lr>, <sip:prov.example;lr>, <sip:198.51.100.1:5060;lr>"));
  auto second_pass = parse_ok(bye("Via: SIP/2.0/UDP prov.example;branch=z9hG4bKp\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=" +
                                      compute_branch(first_pass) + "\r\nVia: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKa",
                                  "Route: <sip:198.51.100.1:5060;lr>"));
  EXPECT_FALSE(is_looped(second_pass, ours));
  // A Via with the same branch but someone else's address is not ours.
  EXPECT_FALSE(is_looped(looped, {LocalEndpoint{Transport::udp, "198.51.100.2", 5060}}));
  // Ours fourth, under three other hops (parse keeps only the first two
  // parsed), on a line of its own or inside a comma-separated line.
  auto fourth = [&](std::string_view vias) { return parse_ok(invite(vias)); };
  const std::string ours_via = "SIP/2.0/UDP 198.51.100.1:5060;branch=" + compute_branch(first);
  EXPECT_TRUE(is_looped(fourth("Via: SIP/2.0/UDP a.example;branch=z9hG4bKa\r\nVia: SIP/2.0/UDP b.example;branch=z9hG4bKb\r\nVia: " +
                              ours_via),
                        ours));
  EXPECT_TRUE(is_looped(fourth("Via: SIP/2.0/UDP a.example;branch=z9hG4bKa, SIP/2.0/UDP b.example;branch=z9hG4bKb, " +
                              ours_via),
                        ours));
}

// Our Route values are popped, whether on one line or many; a strict router
// next (no lr, RFC 3261 16.6 step 6) takes the Request-URI, whose old value
// goes last in Route.
TEST(Forward, PopsOurRoutesAndHandsStrictRoutersTheRequestUri) {
  struct Row {
    std::string routes;
    std::size_t pop;
    bool strict;
    std::string expected_routes;  // remaining Route lines, joined
    std::string expected_ruri;
  };
  const std::string ruri = "sip:2002@10.1.1.1";
  const Row rows[] = {
      {"Route: <sip:198.51.100.1;lr>", 1, false, "", ruri},
      {"Route: <sip:198.51.100.1;lr>, <sip:p.example;lr>", 1, false, "Route: <sip:p.example;lr>", ruri},
      {"Route: <sip:198.51.100.1;lr>,<sip:198.51.100.1;transport=tcp;lr>,<sip:p.example;lr>", 2, false,
       "Route: <sip:p.example;lr>", ruri},
      {"Route: <sip:198.51.100.1;lr>\r\nRoute: <sip:p.example;lr>", 1, false, "Route: <sip:p.example;lr>", ruri},
      {"Route: <sip:198.51.100.1;lr>\r\nRoute: <sip:198.51.100.1;lr>, <sip:p.example;lr>", 2, false,
       "Route: <sip:p.example;lr>", ruri},
      {"Route: <sip:192.0.2.80:5080>", 0, true, "Route: <sip:2002@10.1.1.1>", "sip:192.0.2.80:5080"},
      {"Route: <sip:198.51.100.1;lr>, <sip:192.0.2.80:5080>, <sip:p.example;lr>", 1, true,
       "Route: <sip:p.example;lr>\r\nRoute: <sip:2002@10.1.1.1>", "sip:192.0.2.80:5080"},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.routes);
    auto text = sip_text({"BYE " + ruri + " SIP/2.0", "Via: SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK2",
                          row.routes, "To: <sip:x@p.example>;tag=a", "From: <sip:y@p.example>;tag=b", "Call-ID: r1",
                          "CSeq: 2 BYE", "Max-Forwards: 70", "Content-Length: 0"});
    Flow in{Transport::udp, kPhone, 0};
    auto how = simple_edits(in);
    how.routes_to_pop = row.pop;
    how.strict_route = row.strict;
    auto out = parse_ok(forward_request(parse_ok(text), kPhone, how));
    EXPECT_EQ(out.request_uri, row.expected_ruri);
    std::string remaining;
    for (const auto& h : out.headers)
      if (h.id == sip::HeaderId::Route) remaining += (remaining.empty() ? "" : "\r\n") + std::string("Route: ") + std::string(h.value);
    EXPECT_EQ(remaining, row.expected_routes);
  }
}

TEST(Forward, RecordRouteSingleOrDoubleAndPath) {
  Flow in{Transport::udp, kPhone, 0};
  auto text = invite();
  auto m = parse_ok(text);
  auto how = simple_edits(in);
  how.record_route = true;
  auto same = parse_ok(forward_request(m, kPhone, how));
  EXPECT_EQ(same.value(sip::HeaderId::RecordRoute), "<sip:198.51.100.1:5060;lr;swin=u-203.0.113.7-40000>");

  how.out = kTcpEp;  // UDP phone, TCP upstream: one entry per leg, the top one facing the next hop
  auto changed = parse_ok(forward_request(m, kPhone, how));
  EXPECT_EQ(changed.value(sip::HeaderId::RecordRoute),
            "<sip:198.51.100.1:5060;transport=tcp;lr>, <sip:198.51.100.1:5060;lr;swin=u-203.0.113.7-40000>");
  EXPECT_EQ(changed.value(sip::HeaderId::Via).substr(0, 16), "SIP/2.0/TCP 198.");

  how.record_route = false;
  how.add_path = true;
  auto path = parse_ok(forward_request(m, kPhone, how));
  EXPECT_EQ(path.value(sip::HeaderId::Path), "<sip:198.51.100.1:5060;transport=tcp;lr;swin=u-203.0.113.7-40000>");
  EXPECT_EQ(path.first(sip::HeaderId::RecordRoute), nullptr);
}

TEST(Forward, ContentLengthAddedWhenMovingFromDatagramToStream) {
  auto text = sip_text({"MESSAGE sip:x@p.example SIP/2.0", "Via: SIP/2.0/UDP 203.0.113.7:40000;branch=z9hG4bK3",
                        "To: <sip:x@p.example>", "From: <sip:y@p.example>;tag=1", "Call-ID: cl1", "CSeq: 1 MESSAGE",
                        "Max-Forwards: 70"},
                       "hello");
  Flow in{Transport::udp, kPhone, 0};
  auto how = simple_edits(in);
  how.out = kTcpEp;
  how.add_content_length = true;
  auto out = forward_request(parse_ok(text), kPhone, how);
  auto framed = sip::frame_stream(out);
  ASSERT_TRUE(framed.ok());
  EXPECT_EQ(*framed, out.size());
  EXPECT_EQ(parse_ok(out, sip::Framing::stream).body, "hello");
}

TEST(Forward, ResponseLosesOnlyOurVia) {
  auto text = sip_text({"SIP/2.0 401 Unauthorized", "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKswaa.bb",
                        "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.7",
                        "To: <sip:1001@p.example>;tag=x", "From: <sip:1001@p.example>;tag=1", "Call-ID: resp1",
                        "CSeq: 1 REGISTER",
                        "WWW-Authenticate: Digest realm=\"p.example\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"",
                        "Content-Length: 0"});
  auto out = forward_response(parse_ok(text));
  auto expected = text;
  expected.erase(expected.find("Via: SIP/2.0/UDP 198"), std::string("Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKswaa.bb\r\n").size());
  EXPECT_EQ(out, expected);
  // Combined Via line: only the first element goes.
  auto combined = sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKswaa.bb, SIP/2.0/UDP 192.168.1.10;branch=z9hG4bK1",
                            "To: <sip:1001@p.example>;tag=x", "From: <sip:1001@p.example>;tag=1", "Call-ID: resp2",
                            "CSeq: 1 OPTIONS", "Content-Length: 0"});
  EXPECT_EQ(parse_ok(forward_response(parse_ok(combined))).value(sip::HeaderId::Via), "SIP/2.0/UDP 192.168.1.10;branch=z9hG4bK1");
}

TEST(EditList, AppliesInOffsetOrderKeepingInsertionOrderAtOneOffset) {
  EditList e;
  e.insert(5, "B");
  e.replace(0, 1, "x");
  e.insert(5, "C");
  e.erase(6, 2);
  EXPECT_EQ(e.apply("abcdefghij"), "xbcdeBCfij");
}

}  // namespace
}  // namespace sw::proxy
