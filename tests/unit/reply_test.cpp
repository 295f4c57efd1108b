#include "proxy/reply.hpp"

#include <gtest/gtest.h>

#include "test_messages.hpp"

namespace sw::proxy {
namespace {

using test::parse_ok;
using test::sip_text;

const Address kSource = *Address::from_ip("203.0.113.7", 40000);

TEST(Reply, CopiesTransactionHeadersAddsTagAndReceived) {
  auto req = parse_ok(sip_text({"OPTIONS sip:x@p SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;rport",
                                "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb", "To: <sip:x@p>", "From: <sip:y@p>;tag=f",
                                "Call-ID: rep1", "CSeq: 9 OPTIONS", "Max-Forwards: 0", "Content-Length: 0"}));
  auto text = make_reply(req, kSource, 483, "Too Many Hops", "Max-Forwards \"reached\" 0", "s");
  auto r = parse_ok(text);
  EXPECT_FALSE(r.is_request);
  EXPECT_EQ(r.status, 483);
  EXPECT_EQ(r.reason, "Too Many Hops");
  EXPECT_EQ(r.count(sip::HeaderId::Via), 2u);
  EXPECT_EQ(r.value(sip::HeaderId::Via), "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKa;rport=40000;received=203.0.113.7");
  EXPECT_EQ(r.value(sip::HeaderId::To), "<sip:x@p>;tag=" + local_tag(req, "s"));
  EXPECT_EQ(r.value(sip::HeaderId::CSeq), "9 OPTIONS");
  EXPECT_EQ(r.value(sip::HeaderId::CallId), "rep1");
  EXPECT_NE(text.find("Warning: 399 sipwitness \"Max-Forwards \\\"reached\\\" 0\""), std::string::npos);
  // Stateless but stable: a retransmission gets the same reply.
  EXPECT_EQ(make_reply(req, kSource, 483, "Too Many Hops", "Max-Forwards \"reached\" 0", "s"), text);
}

TEST(Reply, SalvagedFromMalformedBytes) {
  // Bad Content-Length: the message does not parse, but it can be answered.
  auto bytes = sip_text({"INVITE sip:x@p SIP/2.0", "v: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKs", "t: <sip:x@p>",
                         "f: <sip:y@p>;tag=1", "i: salvage1", "CSeq: 1 INVITE", "l: abc"});
  ASSERT_FALSE(sip::parse(bytes, sip::Framing::datagram).ok());
  auto s = sip::salvage(bytes);
  auto text = make_reply(s, kSource, 400, "Bad Request", "Content-Length is not a number", "s");
  auto r = parse_ok(text);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.value(sip::HeaderId::CallId), "salvage1");
  EXPECT_EQ(r.value(sip::HeaderId::Via), "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKs;received=203.0.113.7");

  // An unterminated 200 KB header line (a stream cut at the read size) is
  // skipped; what came before it is still answerable.
  auto huge = "OPTIONS sip:x@p SIP/2.0\r\nVia: SIP/2.0/TCP 10.0.0.5;branch=z9hG4bKh\r\nFrom: <sip:y@p>;tag=1\r\n"
              "To: <sip:x@p>\r\nCall-ID: huge\r\nCSeq: 1 OPTIONS\r\nX-Big: " + std::string(200 * 1024, 'a');
  auto huge_reply = make_reply(sip::salvage(huge), kSource, 400, "Bad Request", "line too long", "s");
  EXPECT_EQ(parse_ok(huge_reply).value(sip::HeaderId::CallId), "huge");

  // Via values that hold no element (empty, commas only, an unbalanced quote)
  // are not a Via to answer to; they must never crash the reply builder.
  for (auto via : {"", ",,", "SIP/2.0/UDP \"x", "<"}) {
    SCOPED_TRACE(via);
    auto empty_via = "OPTIONS sip:x@y SIP/2.0\r\nVia: " + std::string(via) + "\r\nCall-ID: a\r\n\r\n";
    EXPECT_NO_THROW((void)make_reply(sip::salvage(empty_via), kSource, 400, "Bad Request", "x", "s"));
  }

  struct Row {
    const char* name;
    std::string bytes;
  };
  const Row unanswerable[] = {
      {"no Via", sip_text({"INVITE sip:x@p SIP/2.0", "To: <sip:x@p>", "Call-ID: n", "CSeq: 1 INVITE"})},
      {"ACK", sip_text({"ACK sip:x@p SIP/2.0", "Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKs", "l: x"})},
      {"a response", sip_text({"SIP/2.0 200 OK", "Via: SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKs", "l: x"})},
      {"garbage", std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)},
  };
  for (const auto& row : unanswerable) {
    SCOPED_TRACE(row.name);
    EXPECT_EQ(make_reply(sip::salvage(row.bytes), kSource, 400, "Bad Request", "x", "s"), "");
  }
}

TEST(Reply, AckForAn503ThatFailoverAnswers) {
  auto sent = parse_ok(sip_text({"INVITE sip:bob@provider.test SIP/2.0",
                                 "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKswabc.def",
                                 "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKphone;rport=5060",
                                 "Route: <sip:edge.provider.test;lr>", "Max-Forwards: 69",
                                 "From: <sip:alice@p>;tag=a1", "To: <sip:bob@provider.test>", "Call-ID: c1",
                                 "CSeq: 7 INVITE", "Contact: <sip:alice@10.0.0.5>", "Content-Length: 0"}));
  auto busy = parse_ok(sip_text({"SIP/2.0 503 Service Unavailable",
                                 "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKswabc.def",
                                 "Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bKphone;rport=5060",
                                 "From: <sip:alice@p>;tag=a1", "To: <sip:bob@provider.test>;tag=busy",
                                 "Call-ID: c1", "CSeq: 7 INVITE", "Retry-After: 30", "Content-Length: 0"}));
  auto text = make_ack(sent, busy);
  auto ack = parse_ok(text);
  EXPECT_EQ(ack.method, "ACK");
  EXPECT_EQ(ack.request_uri, "sip:bob@provider.test");
  // RFC 3261 17.1.1.3: our Via only (same branch), the INVITE's Route, the response's To tag.
  EXPECT_EQ(ack.count(sip::HeaderId::Via), 1u);
  EXPECT_EQ(ack.value(sip::HeaderId::Via), "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKswabc.def");
  EXPECT_EQ(ack.value(sip::HeaderId::Route), "<sip:edge.provider.test;lr>");
  EXPECT_EQ(ack.value(sip::HeaderId::To), "<sip:bob@provider.test>;tag=busy");
  EXPECT_EQ(ack.value(sip::HeaderId::CSeq), "7 ACK");
  EXPECT_EQ(ack.value(sip::HeaderId::CallId), "c1");
}

}  // namespace
}  // namespace sw::proxy
