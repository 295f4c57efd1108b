// The capture side of `analyze`: link layers, IP fragments, TCP streams, file
// formats and the analyzer on the capture's clock. Captures are built here
// byte by byte (packet_builder for IP/UDP/TCP, hand-written file headers), so
// every case states exactly what the reader gets.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "diag/capture/analysis.hpp"
#include "diag/capture/packet.hpp"
#include "diag/capture/packet_builder.hpp"
#include "diag/capture/reader.hpp"
#include "diag/capture/tcp_stream.hpp"
#include "test_messages.hpp"

namespace sw::capture {
namespace {

using namespace std::chrono_literals;
const TimePoint kT0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 21} + 10h;

IpEndpoint ep(std::string_view text) { return IpEndpoint::parse(text).value(); }
const IpEndpoint kPhone = ep("192.0.2.10:5060");
const IpEndpoint kServer = ep("203.0.113.5:5060");

std::string register_request(std::string_view call_id, int cseq, std::string_view auth = "") {
  std::string m = "REGISTER sip:example.com SIP/2.0\r\n"
                  "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-" + std::to_string(cseq) + "\r\n"
                  "From: <sip:1001@example.com>;tag=ft\r\n"
                  "To: <sip:1001@example.com>\r\n"
                  "Call-ID: " + std::string(call_id) + "\r\n"
                  "CSeq: " + std::to_string(cseq) + " REGISTER\r\n"
                  "Contact: <sip:1001@192.0.2.10:5060>\r\n";
  m += auth;
  m += "Content-Length: 0\r\n\r\n";
  return m;
}

std::string register_response(std::string_view call_id, int cseq, int status, std::string_view extra = "") {
  std::string reason = status == 200 ? "OK" : status == 401 ? "Unauthorized" : "Forbidden";
  std::string m = "SIP/2.0 " + std::to_string(status) + " " + reason + "\r\n"
                  "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-" + std::to_string(cseq) + "\r\n"
                  "From: <sip:1001@example.com>;tag=ft\r\n"
                  "To: <sip:1001@example.com>;tag=srv\r\n"
                  "Call-ID: " + std::string(call_id) + "\r\n"
                  "CSeq: " + std::to_string(cseq) + " REGISTER\r\n";
  m += extra;
  m += "Content-Length: 0\r\n\r\n";
  return m;
}

const std::string kChallenge = "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"\r\n";
const std::string kAnswer =
    "Authorization: Digest username=\"1001\", realm=\"example.com\", nonce=\"n1\", uri=\"sip:example.com\", "
    "response=\"0123456789abcdef0123456789abcdef\", algorithm=MD5, qop=auth, nc=00000001, cnonce=\"c1\"\r\n";

// An INVITE whose SDP makes it bigger than one small-MTU packet.
std::string big_invite() {
  std::string sdp = "v=0\r\no=- 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n";
  for (int i = 0; i < 40; ++i) sdp += "a=candidate:" + std::to_string(i) + " 1 UDP 2130706431 192.0.2.10 4000 typ host\r\n";
  return "INVITE sip:2000@example.com SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-inv\r\n"
         "From: <sip:1001@example.com>;tag=fi\r\nTo: <sip:2000@example.com>\r\n"
         "Call-ID: big-invite\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@192.0.2.10:5060>\r\n"
         "Content-Type: application/sdp\r\nContent-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
}

std::string ethernet(std::string_view ip_packet, std::vector<std::uint16_t> vlans = {}) {
  std::string f(12, '\x02');
  for (auto id : vlans) f += std::string("\x81\x00", 2) + static_cast<char>(id >> 8) + static_cast<char>(id & 0xff);
  f += (ip_packet[0] >> 4) == 6 ? std::string("\x86\xdd", 2) : std::string("\x08\x00", 2);
  f += ip_packet;
  return f;
}

// ---- link layers -----------------------------------------------------------

struct LinkRow {
  const char* name;
  LinkType link;
  std::string frame;
};

TEST(CaptureDecode, EveryLinkTypeYieldsTheUdpPayload) {
  auto sip = register_request("link", 1);
  auto ip4 = build_udp_packet(kPhone, kServer, sip);
  auto ip6 = build_udp_packet(ep("[2001:db8::10]:5060"), ep("[2001:db8::1]:5070"), sip);
  std::string sll(16, '\0');
  sll[14] = '\x08';
  std::string sll2(20, '\0');
  sll2[0] = '\x86';
  sll2[1] = '\xdd';
  std::vector<LinkRow> rows = {
      {"ethernet", LinkType::ethernet, ethernet(ip4)},
      {"ethernet + 802.1Q", LinkType::ethernet, ethernet(ip4, {100})},
      {"ethernet + QinQ", LinkType::ethernet, ethernet(ip6, {100, 200})},
      {"ethernet padded", LinkType::ethernet, ethernet(ip4) + std::string(6, '\0')},
      {"linux SLL", LinkType::linux_sll, sll + ip4},
      {"linux SLL2 IPv6", LinkType::linux_sll2, sll2 + ip6},
      {"raw IPv4", LinkType::raw_ip, ip4},
      {"raw IPv6", LinkType::raw_ip, ip6},
      {"ipv4", LinkType::ipv4, ip4},
      {"null, little-endian host", LinkType::bsd_null, std::string("\x02\0\0\0", 4) + ip4},
      {"null, big-endian host", LinkType::bsd_null, std::string("\0\0\0\x1e", 4) + ip6},
      {"loop", LinkType::bsd_loop, std::string("\0\0\0\x02", 4) + ip4},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    PacketDecoder decoder;
    ReadStats stats;
    Segment seg;
    ASSERT_EQ(decoder.decode(row.link, row.frame, kT0, seg, stats), Decoded::segment);
    EXPECT_FALSE(seg.tcp);
    EXPECT_EQ(seg.payload, sip);
    EXPECT_EQ(stats.udp_datagrams, 1u);
  }
  PacketDecoder decoder;
  ReadStats stats;
  Segment seg;
  auto frame = ethernet(ip6, {7});
  ASSERT_EQ(decoder.decode(LinkType::ethernet, frame, kT0, seg, stats), Decoded::segment);
  EXPECT_EQ(seg.src.to_string(), "[2001:db8::10]:5060");
  EXPECT_EQ(seg.dst.to_string(), "[2001:db8::1]:5070");
}

TEST(CaptureDecode, OtherProtocolsAreUnsupportedAndShortFramesMalformed) {
  PacketDecoder decoder;
  ReadStats stats;
  Segment seg;
  std::string arp(12, '\x02');
  arp += std::string("\x08\x06", 2) + std::string(28, '\0');
  EXPECT_EQ(decoder.decode(LinkType::ethernet, arp, kT0, seg, stats), Decoded::unsupported);
  auto icmp = build_udp_packet(kPhone, kServer, "x");
  icmp[9] = 1;  // protocol ICMP
  EXPECT_EQ(decoder.decode(LinkType::raw_ip, icmp, kT0, seg, stats), Decoded::unsupported);
  auto ip4 = build_udp_packet(kPhone, kServer, register_request("short", 1));
  for (std::size_t cut : {0u, 5u, 13u, 20u, 27u}) {
    SCOPED_TRACE(cut);
    EXPECT_EQ(decoder.decode(LinkType::raw_ip, std::string_view(ip4).substr(0, cut), kT0, seg, stats),
              Decoded::malformed);
  }
  auto tcp = build_tcp_packet(kPhone, kServer, 1, 1, tcp_flag::ack, "");
  tcp[32] = '\xf0';  // TCP data offset 60 bytes, more than the packet holds
  EXPECT_EQ(decoder.decode(LinkType::raw_ip, tcp, kT0, seg, stats), Decoded::malformed);
}

// ---- IP fragments ----------------------------------------------------------

TEST(CaptureDecode, Ipv4FragmentsAreReassembledInAnyOrderWithDuplicates) {
  auto sip = big_invite();
  auto packet = build_udp_packet(kPhone, kServer, sip, 4242);
  auto fragments = fragment_ipv4(packet, 576);
  ASSERT_GE(fragments.size(), 4u);
  std::vector<std::vector<std::size_t>> orders;
  std::vector<std::size_t> in_order(fragments.size());
  for (std::size_t i = 0; i < in_order.size(); ++i) in_order[i] = i;
  orders.push_back(in_order);
  orders.emplace_back(in_order.rbegin(), in_order.rend());
  auto with_duplicate = in_order;
  with_duplicate.insert(with_duplicate.begin() + 2, 1);
  orders.push_back(with_duplicate);
  for (const auto& order : orders) {
    PacketDecoder decoder;
    ReadStats stats;
    Segment seg;
    std::size_t completed = 0;
    for (auto index : order) {
      auto r = decoder.decode(LinkType::raw_ip, fragments[index], kT0, seg, stats);
      if (r == Decoded::segment) {
        ++completed;
        EXPECT_EQ(seg.payload, sip);
      } else {
        EXPECT_EQ(r, Decoded::fragment_held);
      }
    }
    EXPECT_EQ(completed, 1u);
    EXPECT_EQ(stats.reassembled_datagrams, 1u);
    EXPECT_EQ(stats.ip_fragments, order.size());
  }
}

TEST(CaptureDecode, FragmentsOfInterleavedDatagramsAndAMissingOneAreCounted) {
  auto a = fragment_ipv4(build_udp_packet(kPhone, kServer, big_invite(), 1), 576);
  auto b = fragment_ipv4(build_udp_packet(kPhone, kServer, big_invite(), 2), 576);
  PacketDecoder decoder;
  ReadStats stats;
  Segment seg;
  int whole = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (decoder.decode(LinkType::raw_ip, a[i], kT0, seg, stats) == Decoded::segment) ++whole;
    if (i != 1 && decoder.decode(LinkType::raw_ip, b[i], kT0, seg, stats) == Decoded::segment) ++whole;  // b loses one
  }
  EXPECT_EQ(whole, 1);
  decoder.finish(stats);
  EXPECT_EQ(stats.incomplete_fragments, 1u);
}

TEST(CaptureDecode, FragmentsNeverCompletedExpireOnTheCaptureClock) {
  auto a = fragment_ipv4(build_udp_packet(kPhone, kServer, big_invite(), 9), 576);
  PacketDecoder decoder;
  ReadStats stats;
  Segment seg;
  EXPECT_EQ(decoder.decode(LinkType::raw_ip, a[0], kT0, seg, stats), Decoded::fragment_held);
  // The rest arrives a minute later: the first piece is gone, so no datagram.
  for (std::size_t i = 1; i < a.size(); ++i)
    EXPECT_EQ(decoder.decode(LinkType::raw_ip, a[i], kT0 + 60s, seg, stats), Decoded::fragment_held);
  EXPECT_EQ(stats.incomplete_fragments, 1u);
  EXPECT_EQ(stats.reassembled_datagrams, 0u);
}

// IPv6 fragments (RFC 8200 4.5) built by hand: the fragment header sits between
// the fixed header and UDP.
std::vector<std::string> ipv6_fragments(std::string_view udp_packet_v6, std::size_t chunk) {
  std::string header(udp_packet_v6.substr(0, 40));
  auto transport = udp_packet_v6.substr(40);
  std::vector<std::string> out;
  for (std::size_t at = 0; at < transport.size(); at += chunk) {
    auto piece = transport.substr(at, chunk);
    bool more = at + chunk < transport.size();
    std::string frag = header;
    frag[6] = 44;  // next header: fragment
    auto len = static_cast<std::uint16_t>(8 + piece.size());
    frag[4] = static_cast<char>(len >> 8);
    frag[5] = static_cast<char>(len & 0xff);
    auto offset_flags = static_cast<std::uint16_t>((at / 8) << 3 | (more ? 1 : 0));
    frag += std::string{'\x11', '\0', static_cast<char>(offset_flags >> 8), static_cast<char>(offset_flags & 0xff),
                        '\0', '\0', '\x12', '\x34'};
    frag += piece;
    out.push_back(frag);
  }
  return out;
}

TEST(CaptureDecode, Ipv6FragmentsAreReassembled) {
  auto sip = big_invite();
  auto packet = build_udp_packet(ep("[2001:db8::10]:5060"), ep("[2001:db8::1]:5060"), sip);
  auto fragments = ipv6_fragments(packet, 1232);
  ASSERT_GE(fragments.size(), 2u);
  PacketDecoder decoder;
  ReadStats stats;
  Segment seg;
  for (std::size_t i = fragments.size(); i-- > 1;)
    EXPECT_EQ(decoder.decode(LinkType::raw_ip, fragments[i], kT0, seg, stats), Decoded::fragment_held);
  ASSERT_EQ(decoder.decode(LinkType::raw_ip, fragments[0], kT0, seg, stats), Decoded::segment);
  EXPECT_EQ(seg.payload, sip);
  EXPECT_EQ(seg.dst.to_string(), "[2001:db8::1]:5060");
}

// ---- TCP streams -----------------------------------------------------------

struct TcpFeed {
  TcpReassembler tcp;
  ReadStats stats;
  std::vector<std::string> messages;
  void finish() {
    tcp.finish(stats, [&](std::string_view m, const Segment&) { messages.emplace_back(m); });
  }
  void send(std::uint32_t seq, std::string_view payload, std::uint8_t flags = tcp_flag::ack | tcp_flag::psh,
            const IpEndpoint& src = kPhone, const IpEndpoint& dst = kServer) {
    Segment s;
    s.tcp = true;
    s.src = src;
    s.dst = dst;
    s.seq = seq;
    s.flags = flags;
    s.payload = payload;
    tcp.add(s, stats, [&](std::string_view m, const Segment&) { messages.emplace_back(m); });
  }
};

TEST(CaptureTcp, MessagesSplitMidHeaderAndBackToBackAreFramed) {
  auto one = register_request("tcp-1", 1);
  auto two = big_invite();
  std::string stream = one + "\r\n\r\n" + two;  // with a CRLF keep-alive between
  TcpFeed f;
  f.send(999, "", tcp_flag::syn);
  std::uint32_t seq = 1000;
  for (std::size_t at = 0; at < stream.size(); at += 97) {
    auto piece = stream.substr(at, 97);
    f.send(seq, piece);
    seq += static_cast<std::uint32_t>(piece.size());
  }
  ASSERT_EQ(f.messages.size(), 2u);
  EXPECT_EQ(f.messages[0], one);
  EXPECT_EQ(f.messages[1], two);
  EXPECT_EQ(f.stats.sip_messages, 2u);
}

TEST(CaptureTcp, MessagesLargerThanTheLiveParserLimitAreFramed) {
  // The proxy relays up to limits.max_message_bytes; a capture reader must take
  // what the analyzer accepts (kCaptureLimits), not the live defaults.
  auto body = std::string(70000, 'a') + "\r\n";
  auto big = "MESSAGE sip:2000@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK-big\r\n"
             "From: <sip:1001@example.com>;tag=b\r\nTo: <sip:2000@example.com>\r\nCall-ID: big-1\r\n"
             "CSeq: 1 MESSAGE\r\nContent-Type: text/plain\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
  TcpFeed f;
  std::uint32_t seq = 1;
  for (std::size_t at = 0; at < big.size(); at += 1400) {
    auto piece = big.substr(at, 1400);
    f.send(seq, piece);
    seq += static_cast<std::uint32_t>(piece.size());
  }
  ASSERT_EQ(f.messages.size(), 1u);
  EXPECT_EQ(f.messages[0], big);
  EXPECT_EQ(f.stats.tcp_incomplete, 0u);
}

TEST(CaptureTcp, OutOfOrderRetransmittedAndOverlappingSegments) {
  auto msg = big_invite();
  TcpFeed f;
  std::uint32_t base = 0xfffffe00;  // the stream wraps around 2^32 mid-message
  auto part = [&](std::size_t from, std::size_t to) { return msg.substr(from, to - from); };
  auto at = [&](std::size_t from) { return static_cast<std::uint32_t>(base + from); };
  f.send(at(0), part(0, 300));
  f.send(at(600), part(600, 900));          // ahead of a hole
  f.send(at(0), part(0, 300));              // retransmission
  f.send(at(250), part(250, 650));          // fills the hole, overlapping both sides
  f.send(at(900), part(900, msg.size()));
  ASSERT_EQ(f.messages.size(), 1u);
  EXPECT_EQ(f.messages[0], msg);
  EXPECT_EQ(f.stats.tcp_retransmissions, 1u);
  EXPECT_EQ(f.stats.tcp_out_of_order, 1u);
}

TEST(CaptureTcp, BothDirectionsAreSeparateStreams) {
  auto req = register_request("dir", 1);
  auto resp = register_response("dir", 1, 200);
  TcpFeed f;
  f.send(10, req.substr(0, 50));
  f.send(5000, resp.substr(0, 40), tcp_flag::ack, kServer, kPhone);
  f.send(60, req.substr(50));
  f.send(5040, resp.substr(40), tcp_flag::ack, kServer, kPhone);
  ASSERT_EQ(f.messages.size(), 2u);
  EXPECT_EQ(f.messages[0], req);
  EXPECT_EQ(f.messages[1], resp);
}

TEST(CaptureTcp, ACaptureStartingMidMessageResynchronisesOnTheNextStartLine) {
  auto first = register_request("mid", 1);
  auto second = register_request("mid", 2);
  TcpFeed f;
  auto tail = first.substr(30) + second;
  f.send(77, tail);
  ASSERT_EQ(f.messages.size(), 1u);
  EXPECT_EQ(f.messages[0], second);
}

TEST(CaptureTcp, AHoleThatNeverFillsIsSkippedWithinTheBufferLimit) {
  TcpReassembler::Limits limits;
  limits.max_buffered = 4096;
  TcpFeed f;
  f.tcp = TcpReassembler(limits);
  auto lost = register_request("gap", 1);
  std::uint32_t seq = 1;
  f.send(seq, lost.substr(0, 20));
  seq += static_cast<std::uint32_t>(lost.size());  // the rest of the first message is never captured
  std::string later;
  for (int i = 2; i < 20; ++i) later += register_request("gap", i);
  f.send(seq, later);
  EXPECT_EQ(f.stats.tcp_gaps, 1u);
  ASSERT_EQ(f.messages.size(), 18u);
  EXPECT_EQ(f.messages[0], register_request("gap", 2));
}

TEST(CaptureTcp, AllStreamsTogetherHoldAtMostTheGlobalBudget) {
  TcpReassembler::Limits limits;
  limits.max_held = 3000;
  TcpFeed f;
  f.tcp = TcpReassembler(limits);
  auto msg = big_invite();
  ASSERT_GT(msg.size(), 2000u);
  // Three phones each stop mid-INVITE; the third pushes the first one out.
  f.send(1, msg.substr(0, 1200), tcp_flag::ack, ep("192.0.2.1:5060"));
  f.send(1, msg.substr(0, 1200), tcp_flag::ack, ep("192.0.2.2:5060"));
  EXPECT_EQ(f.stats.tcp_incomplete, 0u);
  f.send(1, msg.substr(0, 1200), tcp_flag::ack, ep("192.0.2.3:5060"));
  EXPECT_EQ(f.stats.tcp_incomplete, 1u);
  // The streams still held complete their messages.
  f.send(1201, msg.substr(1200), tcp_flag::ack, ep("192.0.2.3:5060"));
  ASSERT_EQ(f.messages.size(), 1u);
  EXPECT_EQ(f.messages[0], msg);
}

TEST(CaptureTcp, ASegmentTheCaptureNeverGotIsSkippedAtTheEnd) {
  // tcpdump dropped one segment: the messages after it are still read.
  TcpFeed f;
  std::uint32_t seq = 1;
  for (int i = 1; i <= 20; ++i) {
    auto m = register_request("lost", i);
    if (i != 2) f.send(seq, m);
    seq += static_cast<std::uint32_t>(m.size());
  }
  EXPECT_EQ(f.messages.size(), 1u);  // the rest waits for the hole
  f.finish();
  ASSERT_EQ(f.messages.size(), 19u);
  EXPECT_EQ(f.messages[1], register_request("lost", 3));
  EXPECT_EQ(f.stats.tcp_gaps, 1u);
}

TEST(CaptureTcp, AFinBeforeALateRetransmissionKeepsTheStreamUntilTheHoleFills) {
  TcpFeed f;
  auto one = register_request("fin", 1), two = register_request("fin", 2), three = register_request("fin", 3);
  auto at_two = static_cast<std::uint32_t>(1 + one.size());
  auto at_three = static_cast<std::uint32_t>(at_two + two.size());
  f.send(1, one);
  f.send(at_three, three);
  f.send(static_cast<std::uint32_t>(at_three + three.size()), "", tcp_flag::fin | tcp_flag::ack);
  f.send(at_two, two);
  ASSERT_EQ(f.messages.size(), 3u);
  EXPECT_EQ(f.messages[2], three);
  EXPECT_EQ(f.stats.tcp_incomplete, 0u);
}

TEST(CaptureTcp, ThousandsOfTinySegmentsInReverseOrder) {
  auto msg = big_invite();
  TcpFeed f;
  f.send(99, "", tcp_flag::syn);
  for (std::size_t i = msg.size(); i-- > 0;) f.send(static_cast<std::uint32_t>(100 + i), msg.substr(i, 1));
  ASSERT_EQ(f.messages.size(), 1u);
  EXPECT_EQ(f.messages[0], msg);
  EXPECT_EQ(f.stats.tcp_out_of_order, msg.size() - 1);
}

TEST(CaptureTcp, TlsAndOtherProtocolsAreCountedNotRead) {
  TcpFeed f;
  f.send(1, std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
  f.send(12, std::string("\x17\x03\x03\x00\x20", 5) + std::string(32, 'x'));
  f.send(1, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", tcp_flag::ack, kServer, kPhone);
  f.send(1, std::string(20000, 'z'), tcp_flag::ack, ep("192.0.2.99:80"), kPhone);
  EXPECT_EQ(f.stats.non_sip, 1u);  // the long one is decided at once
  f.finish();                       // the short one at the end
  EXPECT_EQ(f.stats.tls_packets, 2u);
  EXPECT_EQ(f.stats.non_sip, 2u);
  EXPECT_TRUE(f.messages.empty());
}

TEST(CaptureTcp, AStreamEndingInsideAMessageIsCounted) {
  TcpFeed f;
  auto msg = register_request("cut", 1);
  f.send(1, msg.substr(0, 60));
  f.send(61, "", tcp_flag::fin | tcp_flag::ack);
  EXPECT_EQ(f.stats.tcp_incomplete, 1u);
  EXPECT_TRUE(f.messages.empty());
}

// ---- files -----------------------------------------------------------------

std::string le16(std::uint16_t v) { return {static_cast<char>(v & 0xff), static_cast<char>(v >> 8)}; }
std::string le32(std::uint32_t v) { return le16(static_cast<std::uint16_t>(v & 0xffff)) + le16(static_cast<std::uint16_t>(v >> 16)); }

struct Frame {
  TimePoint time;
  std::string bytes;
};

std::uint64_t micros(TimePoint t) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

// Classic pcap, microsecond timestamps, little-endian.
std::string pcap_file(std::uint32_t linktype, const std::vector<Frame>& frames, std::uint32_t snaplen = 262144) {
  std::string out = le32(0xa1b2c3d4) + le16(2) + le16(4) + le32(0) + le32(0) + le32(snaplen) + le32(linktype);
  for (const auto& f : frames) {
    auto us = micros(f.time);
    out += le32(static_cast<std::uint32_t>(us / 1000000)) + le32(static_cast<std::uint32_t>(us % 1000000)) +
           le32(static_cast<std::uint32_t>(f.bytes.size())) + le32(static_cast<std::uint32_t>(f.bytes.size())) + f.bytes;
  }
  return out;
}

// pcapng: a section header, one interface, enhanced packet blocks (µs resolution).
std::string pcapng_file(std::uint16_t linktype, const std::vector<Frame>& frames) {
  auto block = [](std::uint32_t type, const std::string& body) {
    std::string padded = body;
    while (padded.size() % 4) padded += '\0';
    auto len = static_cast<std::uint32_t>(12 + padded.size());
    return le32(type) + le32(len) + padded + le32(len);
  };
  std::string out = block(0x0a0d0d0a, le32(0x1a2b3c4d) + le16(1) + le16(0) + le32(0xffffffff) + le32(0xffffffff));
  out += block(1, le16(linktype) + le16(0) + le32(262144));
  for (const auto& f : frames) {
    auto us = micros(f.time);
    out += block(6, le32(0) + le32(static_cast<std::uint32_t>(us >> 32)) + le32(static_cast<std::uint32_t>(us)) +
                        le32(static_cast<std::uint32_t>(f.bytes.size())) +
                        le32(static_cast<std::uint32_t>(f.bytes.size())) + f.bytes);
  }
  return out;
}

class CaptureFile : public ::testing::Test {
 protected:
  std::filesystem::path dir_ = std::filesystem::temp_directory_path() /
                               ("sipwitness-capture-" + std::to_string(::getpid()) + "-" +
                                ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override { std::filesystem::create_directories(dir_); }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& bytes) {
    auto path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  struct Read {
    std::vector<CapturedMessage> messages;
    std::vector<std::string> bytes;
    ReadOutcome outcome;
    FileFormat format{};
  };
  Read read(const std::string& path) {
    Read r;
    r.outcome = read_capture_file(
        path,
        [&](const CapturedMessage& m) {
          r.messages.push_back(m);
          r.bytes.emplace_back(m.bytes);
        },
        {}, r.format);
    for (std::size_t i = 0; i < r.messages.size(); ++i) r.messages[i].bytes = r.bytes[i];
    return r;
  }
};

std::vector<Frame> register_exchange(bool ethernet_link) {
  auto wrap = [&](std::string ip) { return ethernet_link ? ethernet(ip) : ip; };
  return {
      {kT0, wrap(build_udp_packet(kPhone, kServer, register_request("file-1", 1)))},
      {kT0 + 20ms, wrap(build_udp_packet(kServer, kPhone, register_response("file-1", 1, 401, kChallenge)))},
      {kT0 + 40ms, wrap(build_udp_packet(kPhone, kServer, register_request("file-1", 2, kAnswer)))},
      {kT0 + 60ms, wrap(build_udp_packet(kServer, kPhone, register_response("file-1", 2, 200)))},
  };
}

TEST_F(CaptureFile, PcapAndPcapngGiveTheSameMessagesWithTheirTimesAndAddresses) {
  for (auto [name, bytes, format] :
       {std::tuple{"a.pcap", pcap_file(1, register_exchange(true)), FileFormat::pcap},
        std::tuple{"b.pcapng", pcapng_file(1, register_exchange(true)), FileFormat::pcapng},
        std::tuple{"raw.pcap", pcap_file(101, register_exchange(false)), FileFormat::pcap}}) {
    SCOPED_TRACE(name);
    auto r = read(write(name, bytes));
    EXPECT_EQ(r.format, format);
    ASSERT_FALSE(r.outcome.error) << r.outcome.error->describe();
    ASSERT_EQ(r.messages.size(), 4u);
    EXPECT_EQ(r.messages[0].src, "192.0.2.10:5060");
    EXPECT_EQ(r.messages[0].dst, "203.0.113.5:5060");
    EXPECT_EQ(r.messages[0].transport, "udp");
    EXPECT_EQ(r.messages[1].time, kT0 + 20ms);
    EXPECT_EQ(r.messages[3].bytes, register_response("file-1", 2, 200));
    EXPECT_EQ(r.outcome.stats.packets, 4u);
    EXPECT_EQ(r.outcome.stats.sip_messages, 4u);
  }
}

TEST_F(CaptureFile, NonSipTrafficOnAnyPortIsCountedAndSipOnAnyPortIsRead) {
  auto odd_port = ep("192.0.2.10:40000");
  std::vector<Frame> frames = {
      {kT0, build_udp_packet(kPhone, kServer, "\r\n\r\n")},                        // keep-alive
      {kT0, build_udp_packet(odd_port, ep("198.51.100.7:9999"), register_request("odd", 1))},
      {kT0, build_udp_packet(kPhone, kServer, std::string("\x80\x00\x12\x34", 4) + std::string(160, 'r'))},  // RTP
      {kT0, build_udp_packet(kPhone, kServer, std::string("\x16\xfe\xfd", 3) + std::string(40, 'd'))},   // DTLS
  };
  auto r = read(write("mixed.pcap", pcap_file(101, frames)));
  ASSERT_FALSE(r.outcome.error);
  ASSERT_EQ(r.messages.size(), 1u);
  EXPECT_EQ(r.messages[0].dst, "198.51.100.7:9999");
  EXPECT_EQ(r.outcome.stats.non_sip, 1u);
  EXPECT_EQ(r.outcome.stats.tls_packets, 1u);
}

TEST_F(CaptureFile, ATruncatedPcapNamesTheOffsetAndKeepsWhatCameBefore) {
  auto whole = pcap_file(101, register_exchange(false));
  auto cut = whole.substr(0, whole.size() - 30);
  auto r = read(write("cut.pcap", cut));
  ASSERT_TRUE(r.outcome.error);
  EXPECT_EQ(r.messages.size(), 3u);
  EXPECT_NE(r.outcome.error->file.find("cut.pcap"), std::string::npos);
  // The last record starts where the first three end.
  std::size_t last_record = 24;
  for (int i = 0; i < 3; ++i) last_record += 16 + register_exchange(false)[static_cast<std::size_t>(i)].bytes.size();
  EXPECT_EQ(r.outcome.error->offset, last_record);
  EXPECT_NE(r.outcome.error->describe().find("offset " + std::to_string(last_record)), std::string::npos);
}

TEST_F(CaptureFile, OffsetsStayRightAfterARecordLongerThanTheSnapLength) {
  // libpcap cuts a record longer than the header's snap length and skips the
  // rest on disk; the error offset of a later record must still be exact.
  auto frames = register_exchange(false);
  auto file = pcap_file(101, frames, 200);
  auto cut = file.substr(0, file.size() - 30);
  auto r = read(write("snap.pcap", cut));
  ASSERT_TRUE(r.outcome.error);
  std::size_t last_record = 24;
  for (int i = 0; i < 3; ++i) last_record += 16 + frames[static_cast<std::size_t>(i)].bytes.size();
  EXPECT_EQ(r.outcome.error->offset, last_record);
}

TEST_F(CaptureFile, WrongMagicGarbageAndMissingFilesAreErrorsNamingTheFile) {
  auto pcap = pcap_file(101, register_exchange(false));
  pcap[0] = '\x00';
  pcap[1] = '\x13';
  auto bad_magic = read(write("bad.pcap", pcap));
  ASSERT_TRUE(bad_magic.outcome.error);
  EXPECT_EQ(bad_magic.format, FileFormat::unknown);
  EXPECT_EQ(bad_magic.outcome.error->offset, 0u);
  EXPECT_NE(bad_magic.outcome.error->message.find("not a pcap"), std::string::npos);

  auto garbage = read(write("garbage.txt", "hello\nthis is not\na SIP trace at all\n"));
  ASSERT_TRUE(garbage.outcome.error);
  EXPECT_EQ(garbage.format, FileFormat::text);
  EXPECT_NE(garbage.outcome.error->message.find("no SIP message"), std::string::npos);

  auto missing = read((dir_ / "absent.pcap").string());
  ASSERT_TRUE(missing.outcome.error);
  EXPECT_NE(missing.outcome.error->describe().find("absent.pcap"), std::string::npos);

  auto unsupported_link = read(write("usb.pcap", pcap_file(189, register_exchange(false))));
  ASSERT_TRUE(unsupported_link.outcome.error);
  EXPECT_NE(unsupported_link.outcome.error->message.find("not supported"), std::string::npos);
}

TEST(CaptureFormat, DetectedFromTheFirstBytes) {
  EXPECT_EQ(detect_format(le32(0xa1b2c3d4)), FileFormat::pcap);
  EXPECT_EQ(detect_format(std::string("\xa1\xb2\xc3\xd4", 4)), FileFormat::pcap);  // big-endian writer
  EXPECT_EQ(detect_format(le32(0xa1b23c4d)), FileFormat::pcap);                   // nanoseconds
  EXPECT_EQ(detect_format(std::string("\x0a\x0d\x0d\x0a", 4)), FileFormat::pcapng);
  EXPECT_EQ(detect_format("INVITE sip:a@b SIP/2.0\r\n"), FileFormat::text);
  EXPECT_EQ(detect_format(std::string("\x7f" "ELF\x02\x01\x01\0\0\0", 10)), FileFormat::unknown);
}

// ---- the analyzer ----------------------------------------------------------

struct Collected {
  std::vector<diag::Verdict> verdicts;
};

CapturedMessage captured(const std::string& bytes, TimePoint t, const IpEndpoint& src, const IpEndpoint& dst) {
  return CapturedMessage{t, "udp", src.to_string(), dst.to_string(), bytes, 0, 0};
}

TEST(CaptureAnalyzer, GivesTheLiveVerdictsOnTheCapturesClock) {
  AnalyzeSettings settings;
  settings.keep_ladders = true;
  Collected got;
  Analyzer a(settings, [&](const diag::Verdict& v) { got.verdicts.push_back(v); });
  for (const auto& f : register_exchange(false)) {
    Segment seg;
    ReadStats stats;
    PacketDecoder decoder;
    ASSERT_EQ(decoder.decode(LinkType::raw_ip, f.bytes, f.time, seg, stats), Decoded::segment);
    a.feed(captured(std::string(seg.payload), f.time, seg.src, seg.dst), "test.pcap");
  }
  // Challenged and never answered; the capture goes on 40 s later with other traffic.
  auto quiet = register_request("quiet", 1);
  a.feed(captured(quiet, kT0 + 1s, kPhone, kServer), "test.pcap");
  a.feed(captured(register_response("quiet", 1, 401, kChallenge), kT0 + 1s + 10ms, kServer, kPhone), "test.pcap");
  a.feed(captured(register_request("later", 1), kT0 + 41s, kPhone, kServer), "test.pcap");
  a.finish();
  ASSERT_EQ(got.verdicts.size(), 3u);
  EXPECT_EQ(got.verdicts[0].verdict, diag::VerdictKind::ok_after_challenge);
  EXPECT_EQ(got.verdicts[0].ts, kT0 + 60ms);
  EXPECT_EQ(got.verdicts[1].verdict, diag::VerdictKind::no_credentials);
  EXPECT_EQ(got.verdicts[1].confidence, diag::Confidence::certain);  // 40 s of silence seen in the capture
  // Unanswered when the capture stops: likely, and the evidence says why.
  EXPECT_EQ(got.verdicts[2].verdict, diag::VerdictKind::unanswered);
  EXPECT_EQ(got.verdicts[2].confidence, diag::Confidence::likely);
  ASSERT_FALSE(got.verdicts[2].evidence.empty());
  EXPECT_EQ(got.verdicts[2].evidence.back().first, "capture_ended");

  const auto& ladders = a.ladders();
  ASSERT_EQ(ladders.size(), 3u);
  EXPECT_EQ(ladders[0].call_id, "file-1");
  ASSERT_EQ(ladders[0].messages.size(), 4u);
  EXPECT_TRUE(ladders[0].messages[1].challenge);
  EXPECT_TRUE(ladders[0].messages[2].credentials);
  EXPECT_EQ(ladders[0].messages[1].label, "401 Unauthorized");
  EXPECT_NE(ladders[0].messages[1].auth.find("WWW-Authenticate Digest realm=example.com"), std::string::npos);
  EXPECT_EQ(ladders[0].messages[0].src, "192.0.2.10:5060");
  ASSERT_EQ(ladders[0].verdicts.size(), 1u);
  EXPECT_EQ(a.stats().by_verdict.at("ok_after_challenge"), 1u);
  EXPECT_EQ(a.stats().messages, 7u);
}

TEST(CaptureAnalyzer, BothLegsOfAProxyInOneCaptureGiveOneVerdict) {
  // A capture on a proxy host sees every message twice: phone->proxy, proxy->server.
  auto proxy = ep("192.0.2.1:5060");
  Collected got;
  Analyzer a(AnalyzeSettings{}, [&](const diag::Verdict& v) { got.verdicts.push_back(v); });
  auto t = kT0;
  auto both = [&](const std::string& m, bool request) {
    a.feed(captured(m, t, request ? kPhone : kServer, proxy), "x");
    a.feed(captured(m, t + 1ms, proxy, request ? kServer : kPhone), "x");
    t += 10ms;
  };
  both(register_request("dup", 1), true);
  both(register_response("dup", 1, 401, kChallenge), false);
  both(register_request("dup", 2, kAnswer), true);
  both(register_response("dup", 2, 200), false);
  a.finish();
  ASSERT_EQ(got.verdicts.size(), 1u);
  EXPECT_EQ(got.verdicts[0].verdict, diag::VerdictKind::ok_after_challenge);
  EXPECT_EQ(got.verdicts[0].challenges, 1);
}

TEST(CaptureAnalyzer, UnparsableMessagesAreCountedWithWhereTheyWere) {
  Analyzer a(AnalyzeSettings{}, {});
  CapturedMessage bad{kT0, "udp", "", "", "INVITE sip:x SIP/2.0\r\nVia: garbage\r\n\r\n", 1234, 0};
  a.feed(bad, "trace.pcap");
  EXPECT_EQ(a.stats().unparsable, 1u);
  ASSERT_EQ(a.stats().parse_errors.size(), 1u);
  EXPECT_EQ(a.stats().parse_errors[0].rfind("trace.pcap: offset 1234: ", 0), 0u);
}

TEST(CaptureAnalyzer, LaddersAreBounded) {
  AnalyzeSettings settings;
  settings.keep_ladders = true;
  settings.max_ladder_calls = 2;
  settings.max_ladder_messages = 3;
  Analyzer a(settings, {});
  for (int call = 0; call < 4; ++call)
    for (int i = 1; i <= 5; ++i)
      a.feed(captured(register_request("bound-" + std::to_string(call), i), kT0 + std::chrono::milliseconds(i), kPhone,
                      kServer),
             "x");
  a.finish();
  ASSERT_EQ(a.ladders().size(), 2u);
  EXPECT_EQ(a.ladders()[0].messages.size(), 3u);
  EXPECT_EQ(a.ladders()[0].messages_not_kept, 2u);
  EXPECT_EQ(a.stats().calls_not_kept, 2u);
}

}  // namespace
}  // namespace sw::capture
