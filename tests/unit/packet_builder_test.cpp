// The packets diag.capture writes: IPv4/IPv6 with UDP or TCP, their checksums
// checked the way a receiver checks them (the one's complement sum over the
// header, or pseudo header and segment, including the checksum is 0xffff),
// IPv4 fragments, endpoints as text, and the pcap file around them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "diag/capture/packet_builder.hpp"
#include "diag/capture/pcap_writer.hpp"

namespace sw::capture {
namespace {

IpEndpoint ep(std::string_view text) { return IpEndpoint::parse(text).value(); }

unsigned u8(std::string_view b, std::size_t at) { return static_cast<std::uint8_t>(b[at]); }
unsigned u16(std::string_view b, std::size_t at) { return u8(b, at) << 8 | u8(b, at + 1); }
std::uint32_t u32(std::string_view b, std::size_t at) {
  return static_cast<std::uint32_t>(u16(b, at)) << 16 | u16(b, at + 2);
}

// The receiver's check (RFC 1071): summing every 16-bit word, checksum included, gives 0xffff.
unsigned ones_sum(std::string_view b, unsigned long sum = 0) {
  for (std::size_t i = 0; i < b.size(); i += 2) sum += i + 1 < b.size() ? u16(b, i) : u8(b, i) << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<unsigned>(sum);
}

struct Parsed {
  bool v6 = false;
  std::size_t ip_header = 0;
  unsigned protocol = 0;
  std::string_view segment;  // UDP or TCP header and payload
};

Parsed parse_ip(std::string_view p) {
  Parsed out;
  out.v6 = (u8(p, 0) >> 4) == 6;
  if (out.v6) {
    out.ip_header = 40;
    out.protocol = u8(p, 6);
    EXPECT_EQ(u16(p, 4), p.size() - 40) << "payload length";
  } else {
    out.ip_header = (u8(p, 0) & 0x0f) * 4u;
    out.protocol = u8(p, 9);
    EXPECT_EQ(u16(p, 2), p.size()) << "total length";
    EXPECT_EQ(ones_sum(p.substr(0, out.ip_header)), 0xffffu) << "IPv4 header checksum";
  }
  out.segment = p.substr(out.ip_header);
  return out;
}

// Pseudo header (RFC 768 / 793, RFC 8200 8.1) plus segment, checksum included.
unsigned transport_sum(std::string_view p, const Parsed& ip) {
  const auto length = ip.segment.size();
  std::string pseudo(ip.v6 ? p.substr(8, 32) : p.substr(12, 8));
  auto byte = [&](std::size_t v) { pseudo.push_back(static_cast<char>(v & 0xff)); };
  if (ip.v6) {
    for (std::size_t v : {length >> 24, length >> 16, length >> 8, length, std::size_t{0}, std::size_t{0},
                          std::size_t{0}, std::size_t{ip.protocol}})
      byte(v);
  } else {
    for (std::size_t v : {std::size_t{0}, std::size_t{ip.protocol}, length >> 8, length}) byte(v);
  }
  return ones_sum(ip.segment, ones_sum(pseudo));
}

std::string hex(std::string_view b) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : b) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

TEST(IpEndpoint, ParsesAndPrintsBothFamilies) {
  struct Row {
    const char* text;
    bool ok;
    const char* printed;  // to_string() of the parsed endpoint
  };
  const Row rows[] = {
      {"192.0.2.1:5060", true, "192.0.2.1:5060"},
      {"127.0.0.1:0", true, "127.0.0.1:0"},
      {"10.0.0.1:65535", true, "10.0.0.1:65535"},
      {"[2001:db8::1]:5060", true, "[2001:db8::1]:5060"},
      {"[2001:0db8:0:0::1]:5070", true, "[2001:db8::1]:5070"},
      {"[::1]:5060", true, "[::1]:5060"},
      {"[::ffff:127.0.0.1]:5060", true, "[::ffff:127.0.0.1]:5060"},
      {"192.0.2.1", false, ""},
      {"192.0.2.1:", false, ""},
      {"192.0.2.1:65536", false, ""},
      {"192.0.2.1:50a", false, ""},
      {"192.0.2.1:-1", false, ""},
      {"192.0.2.256:5060", false, ""},
      {"2001:db8::1:5060", false, ""},
      {"[2001:db8::1]5060", false, ""},
      {"[2001:db8::1]:", false, ""},
      {"[192.0.2.1]:5060", false, ""},
      {"sip.example.com:5060", false, ""},
      {"", false, ""},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.text);
    auto e = IpEndpoint::parse(row.text);
    ASSERT_EQ(e.has_value(), row.ok);
    if (row.ok) {
      EXPECT_EQ(e->to_string(), row.printed);
    }
  }
  auto v4 = ep("192.0.2.1:5060");
  EXPECT_FALSE(v4.v6);
  EXPECT_EQ(v4.port, 5060);
  EXPECT_EQ(hex(std::string_view(reinterpret_cast<const char*>(v4.addr.data()), 4)), "c0000201");
  auto v6 = ep("[2001:db8::1]:5060");
  EXPECT_TRUE(v6.v6);
  EXPECT_EQ(hex(std::string_view(reinterpret_cast<const char*>(v6.addr.data()), 16)),
            "20010db8000000000000000000000001");
}

TEST(PacketBuilder, UdpIpv4MatchesAPacketBuiltByHand) {
  // Built independently (Python struct + RFC 1071 sum): IPv4 id 0x1234, TTL 64,
  // no flags; UDP 5060 -> 5070.
  auto p = build_udp_packet(ep("192.0.2.1:5060"), ep("198.51.100.7:5070"), "OPTIONS sip:x SIP/2.0\r\n\r\n", 0x1234);
  EXPECT_EQ(hex(p),
            "450000351234000040117c48c0000201c633640713c413ce002130504f5054494f4e53207369703a78205349502f322e30"
            "0d0a0d0a");
}

TEST(PacketBuilder, UdpHeadersAndChecksumsInBothFamilies) {
  struct Row {
    const char* src;
    const char* dst;
    std::size_t payload;  // odd sizes pad the checksum's last word
  };
  const Row rows[] = {
      {"192.0.2.1:5060", "203.0.113.9:5070", 0},   {"192.0.2.1:5060", "203.0.113.9:5070", 1},
      {"10.1.2.3:40000", "10.3.2.1:5060", 1499},  {"127.0.0.1:5060", "127.0.0.1:5061", 65507},
      {"[2001:db8::1]:5060", "[2001:db8::2]:5070", 0}, {"[2001:db8::1]:5060", "[2001:db8::2]:5070", 333},
      {"[::1]:1", "[::1]:65535", 65527},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(std::string(row.src) + " -> " + row.dst + " " + std::to_string(row.payload));
    std::string payload(row.payload, '\0');
    for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i * 7 + 3);
    auto p = build_udp_packet(ep(row.src), ep(row.dst), payload, 7);
    ASSERT_FALSE(p.empty());
    auto ip = parse_ip(p);
    EXPECT_EQ(ip.protocol, 17u);
    if (!ip.v6) {
      EXPECT_EQ(u16(p, 4), 7u) << "IP id";
      EXPECT_EQ(u16(p, 6), 0u) << "no DF, no fragment";
      EXPECT_EQ(u8(p, 8), 64u) << "TTL";
    } else {
      EXPECT_EQ(u8(p, 7), 64u) << "hop limit";
    }
    EXPECT_EQ(u16(ip.segment, 0), ep(row.src).port);
    EXPECT_EQ(u16(ip.segment, 2), ep(row.dst).port);
    EXPECT_EQ(u16(ip.segment, 4), 8 + row.payload);
    EXPECT_NE(u16(ip.segment, 6), 0u) << "checksum present";
    EXPECT_EQ(transport_sum(p, ip), 0xffffu) << "UDP checksum";
    EXPECT_EQ(ip.segment.substr(8), payload);
  }
}

TEST(PacketBuilder, AUdpChecksumOfZeroIsSentAsAllOnes) {
  // With two payload bytes equal to the checksum of a zero payload, the
  // computed sum is exactly 0, which RFC 768 says to transmit as 0xffff.
  auto src = ep("192.0.2.1:5060"), dst = ep("192.0.2.2:5060");
  auto zero = build_udp_packet(src, dst, std::string(2, '\0'));
  const auto c0 = u16(zero, 26);
  std::string payload{static_cast<char>(c0 >> 8), static_cast<char>(c0 & 0xff)};
  auto p = build_udp_packet(src, dst, payload);
  EXPECT_EQ(u16(p, 26), 0xffffu);
  EXPECT_EQ(transport_sum(p, parse_ip(p)), 0xffffu);
}

TEST(PacketBuilder, TcpHeadersAndChecksumsInBothFamilies) {
  for (const char* pair : {"192.0.2.1:5060 198.51.100.2:34567", "[2001:db8::a]:5060 [2001:db8::b]:34567"}) {
    SCOPED_TRACE(pair);
    std::string text(pair);
    auto src = ep(text.substr(0, text.find(' '))), dst = ep(text.substr(text.find(' ') + 1));
    for (std::size_t size : {0u, 1u, 1000u, 64001u}) {
      SCOPED_TRACE(size);
      std::string payload(size, 'x');
      auto p = build_tcp_packet(src, dst, 0xfffffff0u, 12345, tcp_flag::psh | tcp_flag::ack, payload);
      ASSERT_FALSE(p.empty());
      auto ip = parse_ip(p);
      EXPECT_EQ(ip.protocol, 6u);
      if (!ip.v6) {
        EXPECT_EQ(u16(p, 6), 0x4000u) << "DF, as Linux sends TCP";
      }
      const auto& s = ip.segment;
      EXPECT_EQ(u16(s, 0), src.port);
      EXPECT_EQ(u16(s, 2), dst.port);
      EXPECT_EQ(u32(s, 4), 0xfffffff0u);
      EXPECT_EQ(u32(s, 8), 12345u);
      EXPECT_EQ(u8(s, 12) >> 4, 5u) << "data offset: 20 bytes";
      EXPECT_EQ(u8(s, 13), 0x18u) << "PSH|ACK";
      EXPECT_EQ(transport_sum(p, ip), 0xffffu) << "TCP checksum";
      EXPECT_EQ(s.substr(20), payload);
    }
  }
  // Without ACK the acknowledgment field is zero.
  auto syn = build_tcp_packet(ep("192.0.2.1:1"), ep("192.0.2.2:2"), 1, 99, tcp_flag::syn, "");
  EXPECT_EQ(u32(syn, 28), 0u);
  EXPECT_EQ(u8(syn, 33), 0x02u);
}

TEST(PacketBuilder, WhatCannotBeOnePacketIsRefused) {
  auto v4 = ep("192.0.2.1:5060"), v4b = ep("192.0.2.2:5060");
  auto v6 = ep("[2001:db8::1]:5060"), v6b = ep("[2001:db8::2]:5060");
  EXPECT_EQ(build_udp_packet(v4, v4b, std::string(65507, 'a')).size(), 65535u);
  EXPECT_TRUE(build_udp_packet(v4, v4b, std::string(65508, 'a')).empty());
  EXPECT_EQ(build_udp_packet(v6, v6b, std::string(65527, 'a')).size(), 40u + 65535u);
  EXPECT_TRUE(build_udp_packet(v6, v6b, std::string(65528, 'a')).empty());
  EXPECT_EQ(build_tcp_packet(v4, v4b, 0, 0, tcp_flag::ack, std::string(65495, 'a')).size(), 65535u);
  EXPECT_TRUE(build_tcp_packet(v4, v4b, 0, 0, tcp_flag::ack, std::string(65496, 'a')).empty());
  EXPECT_TRUE(build_tcp_packet(v6, v6b, 0, 0, tcp_flag::ack, std::string(65516, 'a')).empty());
  EXPECT_TRUE(build_udp_packet(v4, v6, "x").empty());
  EXPECT_TRUE(build_tcp_packet(v6, v4, 0, 0, 0, "x").empty());
}

// Reassembles fragments the way RFC 815 does, checking each on the way.
std::string check_fragments(const std::vector<std::string>& frags, std::size_t mtu, std::size_t base_offset,
                            bool last_has_more) {
  std::string payload;
  for (std::size_t i = 0; i < frags.size(); ++i) {
    SCOPED_TRACE("fragment " + std::to_string(i));
    const auto& f = frags[i];
    EXPECT_LE(f.size(), mtu);
    auto ip = parse_ip(f);
    const auto flags_offset = u16(f, 6);
    const bool last = i + 1 == frags.size();
    EXPECT_EQ((flags_offset & 0x2000) != 0, !last || last_has_more) << "MF";
    EXPECT_EQ(flags_offset & 0x4000, 0u) << "DF";
    EXPECT_EQ((flags_offset & 0x1fff) * 8u, base_offset + payload.size()) << "offset";
    if (!last) {
      EXPECT_EQ(ip.segment.size() % 8, 0u) << "all but the last carry multiples of 8 bytes";
    }
    payload.append(ip.segment);
  }
  return payload;
}

TEST(PacketBuilder, Ipv4FragmentsCarryOffsetsFlagsAndChecksums) {
  std::string payload(3000, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>(i);
  auto packet = build_udp_packet(ep("192.0.2.1:5060"), ep("192.0.2.2:5060"), payload, 0x4242);
  for (std::size_t mtu : {1500u, 576u, 68u, 29u}) {
    SCOPED_TRACE("mtu " + std::to_string(mtu));
    auto frags = fragment_ipv4(packet, mtu);
    const std::size_t per = (mtu - 20) / 8 * 8;
    ASSERT_EQ(frags.size(), (packet.size() - 20 + per - 1) / per);
    for (const auto& f : frags) EXPECT_EQ(u16(f, 4), 0x4242u) << "one IP id for the datagram";
    EXPECT_EQ(check_fragments(frags, mtu, 0, false), packet.substr(20)) << "reassembled";
  }
  // Fits: back whole. Not IPv4, or no room for 8 bytes of payload: nothing.
  auto whole = fragment_ipv4(packet, packet.size());
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0], packet);
  EXPECT_TRUE(fragment_ipv4(packet, 27).empty());
  EXPECT_TRUE(fragment_ipv4(build_udp_packet(ep("[::1]:1"), ep("[::1]:2"), payload), 1280).empty());
  EXPECT_TRUE(fragment_ipv4("", 1500).empty());
  EXPECT_TRUE(fragment_ipv4(packet.substr(0, 100), 60).empty()) << "truncated";
}

TEST(PacketBuilder, AFragmentSplitAgainKeepsItsPlaceAndItsMoreFlag) {
  auto packet = build_udp_packet(ep("192.0.2.1:5060"), ep("192.0.2.2:5060"), std::string(2000, 'p'));
  auto first = fragment_ipv4(packet, 1500);
  ASSERT_EQ(first.size(), 2u);
  // The first fragment (offset 0, MF) through a smaller link.
  auto again = fragment_ipv4(first[0], 500);
  EXPECT_EQ(check_fragments(again, 500, 0, true), first[0].substr(20));
  // The last one (offset 1480, no MF) too.
  auto tail = fragment_ipv4(first[1], 300);
  EXPECT_EQ(check_fragments(tail, 300, 1480, false), first[1].substr(20));
}

TEST(PacketBuilder, LaterFragmentsKeepOnlyTheOptionsMarkedCopied) {
  auto packet = build_udp_packet(ep("192.0.2.1:5060"), ep("192.0.2.2:5060"), std::string(100, 'o'));
  // Insert 8 option bytes: a copied option (type 0x94, router alert: 4 bytes),
  // a no-op, an uncopied one (type 0x07, 3 bytes).
  const std::string options("\x94\x04\x00\x00\x01\x07\x03\x00", 8);
  packet.insert(20, options);
  packet[0] = 0x47;
  packet[2] = static_cast<char>(packet.size() >> 8);
  packet[3] = static_cast<char>(packet.size() & 0xff);
  auto frags = fragment_ipv4(packet, 60);
  ASSERT_GE(frags.size(), 2u);
  EXPECT_EQ(u8(frags[0], 0), 0x47u);
  EXPECT_EQ(frags[0].substr(20, 8), options);
  for (std::size_t i = 1; i < frags.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(u8(frags[i], 0), 0x46u) << "24-byte header";
    EXPECT_EQ(frags[i].substr(20, 4), options.substr(0, 4));
  }
  std::string reassembled;
  for (const auto& f : frags) reassembled += f.substr((u8(f, 0) & 0x0f) * 4u);
  EXPECT_EQ(reassembled, packet.substr(28));
}

class PcapWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("sipwitness-pcap-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string read(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  // pcap stores its header fields in the writer's byte order: read little
  // endian, as on the machines this runs on (the magic says which).
  static std::uint32_t le32(std::string_view b, std::size_t at) {
    return static_cast<std::uint32_t>(u8(b, at) | u8(b, at + 1) << 8 | u8(b, at + 2) << 16) |
           static_cast<std::uint32_t>(u8(b, at + 3)) << 24;
  }
  std::filesystem::path dir_;
};

TEST_F(PcapWriterTest, WritesARawIpCaptureWithTimesAndLengths) {
  using namespace std::chrono;
  auto path = dir_ / "out.pcap";
  auto udp = build_udp_packet(ep("192.0.2.1:5060"), ep("192.0.2.2:5060"), "hello");
  std::string big(PcapWriter::kSnapLength + 40, 'b');  // an IPv6 jumbo-sized record is cut
  const auto t0 = sys_days{year{2026} / 11 / 21} + 10h + 123456us;
  {
    PcapWriter w(path.string());
    ASSERT_TRUE(w.ok()) << w.error();
    w.write(t0, udp);
    w.write(t0 + 1500ms, big);
    EXPECT_TRUE(w.flush());
    EXPECT_EQ(w.records(), 2u);
  }
  auto file = read(path);
  ASSERT_EQ(file.size(), 24u + 16 + udp.size() + 16 + PcapWriter::kSnapLength);
  EXPECT_EQ(le32(file, 0), 0xa1b2c3d4u) << "magic, microsecond times";
  EXPECT_EQ(le32(file, 16), PcapWriter::kSnapLength);
  EXPECT_EQ(le32(file, 20), 101u) << "LINKTYPE_RAW";
  const auto secs = static_cast<std::uint32_t>(duration_cast<seconds>(t0.time_since_epoch()).count());
  EXPECT_EQ(le32(file, 24), secs);
  EXPECT_EQ(le32(file, 28), 123456u);
  EXPECT_EQ(le32(file, 32), udp.size());
  EXPECT_EQ(le32(file, 36), udp.size());
  EXPECT_EQ(file.substr(40, udp.size()), udp);
  const auto second = 40 + udp.size();
  EXPECT_EQ(le32(file, second), secs + 1);
  EXPECT_EQ(le32(file, second + 4), 623456u);
  EXPECT_EQ(le32(file, second + 8), PcapWriter::kSnapLength) << "captured length";
  EXPECT_EQ(le32(file, second + 12), big.size()) << "original length";
}

TEST_F(PcapWriterTest, AFileThatCannotBeCreatedIsAnErrorValue) {
  PcapWriter w((dir_ / "missing" / "out.pcap").string());
  EXPECT_FALSE(w.ok());
  EXPECT_NE(w.error().find("cannot open"), std::string::npos) << w.error();
  EXPECT_NE(w.error().find("No such file or directory"), std::string::npos) << w.error();
  w.write(std::chrono::system_clock::now(), "ignored");
  EXPECT_FALSE(w.flush());
  EXPECT_EQ(w.records(), 0u);
}

}  // namespace
}  // namespace sw::capture
