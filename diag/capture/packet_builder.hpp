#pragma once
// Builds raw IP packets (LINKTYPE_RAW: IPv4 or IPv6, no link header) around a
// payload, so the live proxy can write what it relays to a pcap file that
// Wireshark and `sipwitness analyze` both read. Pure; also used by tests and
// benchmarks to make captures.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sw::capture {

struct IpEndpoint {
  bool v6 = false;
  std::array<std::uint8_t, 16> addr{};  // IPv4 in the first 4 bytes
  std::uint16_t port = 0;

  // "192.0.2.1:5060" or "[2001:db8::1]:5060".
  static std::optional<IpEndpoint> parse(std::string_view host_port);
  std::string to_string() const;  // the same forms
};

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

// One UDP datagram in one IP packet (with correct checksums). src and dst must
// be the same family; "" when they are not or the payload cannot fit one packet.
std::string build_udp_packet(const IpEndpoint& src, const IpEndpoint& dst, std::string_view payload,
                             std::uint16_t ip_id = 0);
// One TCP segment in one IP packet; "" as above.
std::string build_tcp_packet(const IpEndpoint& src, const IpEndpoint& dst, std::uint32_t seq, std::uint32_t ack,
                             std::uint8_t flags, std::string_view payload);
// Splits an IPv4 packet into fragments whose IP packets are at most `mtu`
// bytes (RFC 791); a packet that fits comes back whole; none when the packet
// is not IPv4 or the mtu cannot hold its header and 8 bytes.
std::vector<std::string> fragment_ipv4(std::string_view packet, std::size_t mtu);

}  // namespace sw::capture
