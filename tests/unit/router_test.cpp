#include "proxy/router.hpp"

#include <gtest/gtest.h>

#include "proxy/reply.hpp"
#include "test_messages.hpp"

namespace sw::proxy {
namespace {

using test::parse_ok;
using test::sip_text;

const LocalEndpoint kUs{Transport::udp, "198.51.100.1", 5060};
const std::vector<LocalEndpoint> kOurs{kUs};
const Flow kPhone{Transport::udp, *Address::from_ip("203.0.113.7", 40000), 0};
const Flow kTcpPhone{Transport::tcp, *Address::from_ip("203.0.113.8", 51000), 7};
const Flow kProvider{Transport::udp, *Address::from_ip("192.0.2.50", 5060), 0};
const Target kUpstream{Transport::udp, "192.0.2.50", 5060, std::nullopt};

std::string request(std::string_view method, std::string_view ruri, std::string_view to_tag = "",
                    std::string_view extra = "", std::string_view max_forwards = "70") {
  std::string to = "To: <sip:2002@provider.example>";
  if (!to_tag.empty()) to += ";tag=" + std::string(to_tag);
  std::string text = std::string(method) + " " + std::string(ruri) + " SIP/2.0\r\n" +
                     "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKr1;rport\r\n" + to + "\r\n" +
                     "From: <sip:1001@provider.example>;tag=f1\r\nCall-ID: route-test\r\nCSeq: 5 " +
                     std::string(method) + "\r\nMax-Forwards: " + std::string(max_forwards) + "\r\n";
  if (!extra.empty()) text += std::string(extra) + "\r\n";
  return text + "Content-Length: 0\r\n\r\n";
}

// A binding table with phone 1001 registered from kPhone.
BindingTable registered(Clock::time_point now) {
  BindingTable t(100);
  auto reg = parse_ok(sip_text({"REGISTER sip:provider.example SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKreg",
                                "To: <sip:1001@provider.example>", "From: <sip:1001@provider.example>;tag=r",
                                "Call-ID: reg1", "CSeq: 1 REGISTER", "Contact: <sip:1001@10.0.0.5:5060>",
                                "Content-Length: 0"}));
  t.remember_register("z9hG4bKswreg", reg, kPhone, now);
  // The registrar echoes both Vias on one line, comma-joined (RFC 3261 7.3.1).
  auto ok = parse_ok(sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKswreg, SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKreg",
                               "To: <sip:1001@provider.example>;tag=s", "From: <sip:1001@provider.example>;tag=r",
                               "Call-ID: reg1", "CSeq: 1 REGISTER", "Contact: <sip:1001@10.0.0.5:5060>;expires=300",
                               "Content-Length: 0"}));
  EXPECT_EQ(t.on_register_response(ok, now), 1u);
  return t;
}

TEST(Router, RequestDecisions) {
  auto now = Clock::now();
  auto bindings = registered(now);
  const std::string phone_token = ";swin=" + flow_token(kPhone);
  struct Row {
    const char* name;
    std::string text;
    Flow from;
    bool from_upstream;
    RequestDecision::Kind kind;
    int status;                 // for replies
    std::string target;         // "host:port/transport" for forwards
    std::size_t pops;
    bool record_route;
    bool path;
  };
  using K = RequestDecision::Kind;
  const Row rows[] = {
      {"phone INVITE goes upstream with Record-Route", request("INVITE", "sip:2002@provider.example"), kPhone, false,
       K::forward, 0, "192.0.2.50:5060/udp", 0, true, false},
      {"phone REGISTER goes upstream with Path", request("REGISTER", "sip:provider.example"), kPhone, false, K::forward,
       0, "192.0.2.50:5060/udp", 0, false, true},
      {"OPTIONS is not dialog forming", request("OPTIONS", "sip:provider.example"), kPhone, false, K::forward, 0,
       "192.0.2.50:5060/udp", 0, false, false},
      {"upstream INVITE to the registered contact reaches the phone's flow",
       request("INVITE", "sip:1001@10.0.0.5:5060"), kProvider, true, K::forward, 0, "203.0.113.7:40000/udp", 0, true,
       false},
      {"upstream INVITE to the AOR reaches the phone", request("INVITE", "sip:1001@provider.example"), kProvider, true,
       K::forward, 0, "203.0.113.7:40000/udp", 0, true, false},
      {"upstream INVITE to an unknown user of ours is 404", request("INVITE", "sip:9999@198.51.100.1"), kProvider,
       true, K::reply, 404, "", 0, false, false},
      {"upstream INVITE elsewhere follows the Request-URI", request("INVITE", "sip:9999@192.0.2.99:5080;transport=tcp"),
       kProvider, true, K::forward, 0, "192.0.2.99:5080/tcp", 0, true, false},
      {"Max-Forwards 0 is 483", request("OPTIONS", "sip:provider.example", "", "", "0"), kPhone, false, K::reply, 483,
       "", 0, false, false},
      {"ACK with Max-Forwards 0 is absorbed, never answered", request("ACK", "sip:provider.example", "t", "", "0"),
       kPhone, false, K::absorb, 0, "", 0, false, false},
      {"in-dialog BYE from upstream: our Route popped, flow token leads to the phone",
       request("BYE", "sip:1001@10.0.0.5:5060", "t", "Route: <sip:198.51.100.1:5060;lr" + phone_token + ">"),
       kProvider, true, K::forward, 0, "203.0.113.7:40000/udp", 1, false, false},
      {"in-dialog BYE from the phone: token names the sender, next Route wins",
       request("BYE", "sip:2002@192.0.2.60", "t",
               "Route: <sip:198.51.100.1:5060;lr" + phone_token + ">, <sip:192.0.2.50;lr>"),
       kPhone, false, K::forward, 0, "192.0.2.50:5060/udp", 1, false, false},
      {"ACK for a non-2xx final response (To tag, no Route) follows its INVITE upstream",
       request("ACK", "sip:2002@provider.example", "t"), kPhone, false, K::forward, 0, "192.0.2.50:5060/udp", 0, false,
       false},
      {"in-dialog without Route follows the Request-URI", request("BYE", "sip:2002@192.0.2.60:5090", "t"), kPhone,
       false, K::forward, 0, "192.0.2.60:5090/udp", 0, false, false},
      {"in-dialog to our own address (UA ignored the route set) goes upstream",
       request("BYE", "sip:2002@198.51.100.1:5060", "t"), kPhone, false, K::forward, 0, "192.0.2.50:5060/udp", 0, false,
       false},
      {"maddr overrides the host", request("BYE", "sip:2002@p.example;maddr=192.0.2.77", "t"), kPhone, false,
       K::forward, 0, "192.0.2.77:5060/udp", 0, false, false},
      {"tel: from a phone goes upstream", request("INVITE", "tel:+15551234"), kPhone, false, K::forward, 0,
       "192.0.2.50:5060/udp", 0, true, false},
      {"tel: from upstream is 416", request("INVITE", "tel:+15551234"), kProvider, true, K::reply, 416, "", 0, false,
       false},
      {"urn: (an emergency service URN) from a phone goes upstream", request("INVITE", "urn:service:sos"), kPhone,
       false, K::forward, 0, "192.0.2.50:5060/udp", 0, true, false},
      {"any other scheme is 416 (RFC 4475 3.3.2)", request("OPTIONS", "nobodyKnowsThisScheme:totallyopaquecontent"),
       kPhone, false, K::reply, 416, "", 0, false, false},
      {"headers in the Request-URI are 400 (RFC 4475 3.1.2.11)",
       request("OPTIONS", "sip:user@example.com?Route=%3Csip:example.com%3E"), kPhone, false, K::reply, 400, "", 0,
       false, false},
      {"Proxy-Require is 420 (RFC 3261 16.3 step 5)",
       request("OPTIONS", "sip:provider.example", "", "Proxy-Require: noProxiesSupportThis, norDoAnyProxiesSupportThis"),
       kPhone, false, K::reply, 420, "", 0, false, false},
      {"an ACK with Proxy-Require is relayed, never answered",
       request("ACK", "sip:2002@provider.example", "t", "Proxy-Require: foo"), kPhone, false, K::forward, 0,
       "192.0.2.50:5060/udp", 0, false, false},
      {"re-INVITE is not record-routed again", request("INVITE", "sip:2002@192.0.2.60", "t"), kPhone, false,
       K::forward, 0, "192.0.2.60:5060/udp", 0, false, false},
      {"TCP phone INVITE to a registered contact of another flow is delivered there",
       request("INVITE", "sip:1001@10.0.0.5:5060"), kTcpPhone, false, K::forward, 0, "203.0.113.7:40000/udp", 0, true,
       false},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto m = parse_ok(row.text);
    auto tag = local_tag(m, "secret");
    RoutingContext ctx{kOurs, kUpstream, bindings, now, tag};
    auto d = route_request(m, Inbound{row.from, row.from_upstream}, ctx, true, true);
    ASSERT_EQ(static_cast<int>(d.kind), static_cast<int>(row.kind)) << d.detail;
    if (row.kind == K::reply) {
      EXPECT_EQ(d.status, row.status);
    }
    if (row.kind == K::forward) {
      EXPECT_EQ(d.target.host + ":" + std::to_string(d.target.port) + "/" + std::string(config::to_string(d.target.transport)),
                row.target);
      EXPECT_EQ(d.routes_to_pop, row.pops);
      EXPECT_EQ(d.record_route, row.record_route);
      EXPECT_EQ(d.add_path, row.path);
    }
  }
}

TEST(Router, ProxyRequireListsEveryTagInUnsupported) {
  auto m = parse_ok(request("OPTIONS", "sip:provider.example", "", "Proxy-Require: a, b\r\nProxy-Require: c"));
  BindingTable none(10);
  RoutingContext ctx{kOurs, kUpstream, none, Clock::now(), ""};
  auto d = route_request(m, Inbound{kPhone, false}, ctx, true, true);
  EXPECT_EQ(d.status, 420);
  EXPECT_EQ(d.headers, "Unsupported: a, b, c\r\n");
}

TEST(Router, StrictRouteIsMarked) {
  BindingTable none(10);
  RoutingContext ctx{kOurs, kUpstream, none, Clock::now(), ""};
  auto strict = parse_ok(request("MESSAGE", "sip:kumiko@example.org", "", "Route: <sip:192.0.2.80:5080>"));
  auto d = route_request(strict, Inbound{kPhone, false}, ctx, true, true);
  EXPECT_TRUE(d.strict_route);
  EXPECT_EQ(d.target.port, 5080);
  auto loose = parse_ok(request("MESSAGE", "sip:kumiko@example.org", "", "Route: <sip:192.0.2.80:5080;lr>"));
  EXPECT_FALSE(route_request(loose, Inbound{kPhone, false}, ctx, true, true).strict_route);
}

TEST(Router, AckForOurOwnResponseIsAbsorbed) {
  auto now = Clock::now();
  BindingTable none(10);
  auto invite = parse_ok(request("INVITE", "sip:2002@provider.example"));
  auto tag = local_tag(invite, "secret");
  auto ack = parse_ok(request("ACK", "sip:2002@provider.example", tag));
  auto ack_tag = local_tag(ack, "secret");
  RoutingContext ctx{kOurs, kUpstream, none, now, ack_tag};
  EXPECT_EQ(route_request(ack, Inbound{kPhone, false}, ctx, true, true).kind, RequestDecision::Kind::absorb);
  // An ACK with someone else's tag is forwarded.
  auto other = parse_ok(request("ACK", "sip:2002@192.0.2.60", "theirs"));
  EXPECT_EQ(route_request(other, Inbound{kPhone, false}, ctx, true, true).kind, RequestDecision::Kind::forward);
}

TEST(Router, ResponsesFollowTheSecondVia) {
  struct Row {
    const char* name;
    std::string second_via;
    bool forward;
    std::string target;
  };
  const Row rows[] = {
      {"received and rport win", "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;rport=40000;received=203.0.113.7", true,
       "203.0.113.7:40000/udp"},
      {"received only keeps the sent-by port", "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1;received=203.0.113.7", true,
       "203.0.113.7:5070/udp"},
      {"plain sent-by with default port", "SIP/2.0/TCP phone.example;branch=z9hG4bK1", true, "phone.example:5060/tcp"},
      {"IPv6 received", "SIP/2.0/UDP [2001:db8::5]:5062;branch=z9hG4bK1;received=[2001:db8::9]", true,
       "2001:db8::9:5062/udp"},
      {"no second Via", "", false, ""},
      {"a broadcast address is never answered to (RFC 4475 3.3.10)", "SIP/2.0/UDP 255.255.255.255;branch=z9hG4bK1",
       false, ""},
      {"nor a multicast one", "SIP/2.0/UDP 224.0.1.75;branch=z9hG4bK1", false, ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    std::string text = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKswaa.bb\r\n";
    if (!row.second_via.empty()) text += "Via: " + row.second_via + "\r\n";
    text += "To: <sip:a@b>;tag=1\r\nFrom: <sip:a@b>;tag=2\r\nCall-ID: rr\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
    auto d = route_response(parse_ok(text), kOurs);
    EXPECT_EQ(d.forward, row.forward) << d.drop_reason;
    if (row.forward) {
      EXPECT_EQ(d.target.host + ":" + std::to_string(d.target.port) + "/" + std::string(config::to_string(d.target.transport)),
                row.target);
    }
  }
  // Our Via names the socket and TCP connection the request came in on.
  auto marked = sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKswaa.bb;swl=2;swc=17",
                          "Via: SIP/2.0/TCP 10.0.0.5:5070;branch=z9hG4bK1", "To: <sip:a@b>;tag=1", "From: <sip:a@b>;tag=2",
                          "Call-ID: rr3", "CSeq: 1 OPTIONS", "Content-Length: 0"});
  auto d = route_response(parse_ok(marked), kOurs);
  ASSERT_TRUE(d.forward);
  EXPECT_EQ(d.target.listener, 2u);
  EXPECT_EQ(d.target.connection, 17u);
  EXPECT_EQ(d.target.port, 5070);  // no rport: the sent-by port, but the connection wins when it is open
  // In any order and case, past a parameter that only starts like one of ours.
  auto reordered = sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKswaa.bb;SWC=9;swlx=4;swl=3",
                             "Via: SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK1", "To: <sip:a@b>;tag=1", "From: <sip:a@b>;tag=2",
                             "Call-ID: rr4", "CSeq: 1 OPTIONS", "Content-Length: 0"});
  d = route_response(parse_ok(reordered), kOurs);
  ASSERT_TRUE(d.forward);
  EXPECT_EQ(d.target.listener, 3u);
  EXPECT_EQ(d.target.connection, 9u);
  // A response whose top Via is not ours is dropped (RFC 3261 16.7 step 1 note).
  auto foreign = sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKx", "To: <sip:a@b>;tag=1",
                           "From: <sip:a@b>;tag=2", "Call-ID: rr2", "CSeq: 1 OPTIONS", "Content-Length: 0"});
  EXPECT_FALSE(route_response(parse_ok(foreign), kOurs).forward);
}

TEST(Bindings, ExpiryRemovalAndCapacity) {
  auto now = Clock::now();
  auto t = registered(now);
  auto contact = *sip::parse_uri("sip:1001@10.0.0.5:5060");
  ASSERT_TRUE(t.lookup(contact, now).has_value());
  EXPECT_TRUE(t.lookup(contact, now)->same_peer(kPhone));
  EXPECT_FALSE(t.lookup(contact, now + std::chrono::seconds(301)).has_value());
  EXPECT_FALSE(t.lookup_contact(*sip::parse_uri("sip:1001@provider.example"), now).has_value());

  // Unregister: the 2xx no longer lists the contact.
  auto unreg = parse_ok(sip_text({"REGISTER sip:provider.example SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKu",
                                  "To: <sip:1001@provider.example>", "From: <sip:1001@provider.example>;tag=r",
                                  "Call-ID: reg1", "CSeq: 2 REGISTER", "Contact: <sip:1001@10.0.0.5:5060>;expires=0",
                                  "Content-Length: 0"}));
  t.remember_register("z9hG4bKswu", unreg, kPhone, now);
  auto ok = parse_ok(sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKswu", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKu",
                               "To: <sip:1001@provider.example>;tag=s", "From: <sip:1001@provider.example>;tag=r",
                               "Call-ID: reg1", "CSeq: 2 REGISTER", "Content-Length: 0"}));
  EXPECT_EQ(t.on_register_response(ok, now), 0u);
  EXPECT_FALSE(t.lookup(contact, now).has_value());

  // A 401 creates nothing; the pending entry is consumed.
  auto reg = parse_ok(sip_text({"REGISTER sip:provider.example SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKc",
                                "To: <sip:1001@provider.example>", "From: <sip:1001@provider.example>;tag=r",
                                "Call-ID: reg1", "CSeq: 3 REGISTER", "Contact: <sip:1001@10.0.0.5:5060>",
                                "Content-Length: 0"}));
  t.remember_register("z9hG4bKswc", reg, kPhone, now);
  EXPECT_EQ(t.pending(), 1u);
  auto challenge = parse_ok(sip_text({"SIP/2.0 401 Unauthorized", "Via: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bKswc", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKc",
                                      "To: <sip:1001@provider.example>;tag=s", "From: <sip:1001@provider.example>;tag=r",
                                      "Call-ID: reg1", "CSeq: 3 REGISTER", "Content-Length: 0"}));
  EXPECT_EQ(t.on_register_response(challenge, now), 0u);
  EXPECT_EQ(t.pending(), 0u);

  // Capacity: the binding closest to expiry makes room, and it is counted.
  BindingTable small(1);
  for (int i = 0; i < 2; ++i) {
    auto text = sip_text({"REGISTER sip:p SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKcap",
                          "To: <sip:u" + std::to_string(i) + "@p>", "From: <sip:u@p>;tag=r", "Call-ID: cap",
                          "CSeq: 1 REGISTER", "Contact: <sip:u" + std::to_string(i) + "@10.0.0.5>", "Content-Length: 0"});
    auto r = parse_ok(text);
    small.remember_register("b" + std::to_string(i), r, kPhone, now);
    auto resp_text = sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 198.51.100.1;branch=b" + std::to_string(i), "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKcap",
                               "To: <sip:u" + std::to_string(i) + "@p>;tag=s", "From: <sip:u@p>;tag=r", "Call-ID: cap",
                               "CSeq: 1 REGISTER", "Contact: <sip:u" + std::to_string(i) + "@10.0.0.5>;expires=60",
                               "Content-Length: 0"});
    small.on_register_response(parse_ok(resp_text), now);
  }
  EXPECT_EQ(small.size(), 1u);
  EXPECT_EQ(small.evictions(), 1u);
}

TEST(FlowToken, RoundTrips) {
  for (const auto& f : {kPhone, kTcpPhone, Flow{Transport::udp, *Address::from_ip("2001:db8::1", 5062), 0},
                        Flow{Transport::udp, *Address::from_ip("192.0.2.7", 5060), 0, 3}}) {
    auto token = flow_token(f);
    SCOPED_TRACE(token);
    auto back = parse_flow_token(token);
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(back->same_peer(f));
    EXPECT_EQ(back->listener, f.listener);
  }
  EXPECT_EQ(flow_token(Flow{Transport::udp, *Address::from_ip("192.0.2.7", 5060), 0, 3}), "u3-192.0.2.7-5060");
  for (auto bad : {"", "x-1.2.3.4-5", "u-1.2.3.4", "u-1.2.3.4-99999", "u-host-5060", "ux-1.2.3.4-5"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(parse_flow_token(bad).has_value());
  }
}

TEST(Address, WithPortKeepsTheAddress) {
  for (auto ip : {"192.0.2.7", "2001:db8::1", "::1"}) {
    SCOPED_TRACE(ip);
    auto a = *Address::from_ip(ip, 5060);
    auto moved = a.with_port(5070);
    EXPECT_EQ(moved.port(), 5070);
    EXPECT_EQ(moved.family(), a.family());
    EXPECT_TRUE(moved.same_ip(a));
    EXPECT_EQ(moved, *Address::from_ip(ip, 5070));
    EXPECT_EQ(a.port(), 5060);  // a copy: the original keeps its port
  }
}

}  // namespace
}  // namespace sw::proxy
