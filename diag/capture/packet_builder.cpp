#include "packet_builder.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "diag/capture/wire.hpp"
#include "proxy/sip/text.hpp"

namespace sw::capture {
namespace {

using wire::kProtoTcp;
using wire::kProtoUdp;
constexpr std::size_t kIpv4Header = 20, kIpv6Header = 40, kUdpHeader = 8, kTcpHeader = 20;
constexpr std::size_t kMaxIpv4Total = 65535;    // total length is 16 bits
constexpr std::size_t kMaxIpv6Payload = 65535;  // payload length is 16 bits (no jumbograms)
constexpr std::uint8_t kTtl = 64;

// RFC 1071: the one's complement sum of 16-bit words, carried across calls so
// a pseudo header and a segment can be summed separately.
std::uint32_t sum_words(std::string_view bytes, std::uint32_t sum = 0) {
  std::size_t i = 0;
  for (; i + 1 < bytes.size(); i += 2) sum += wire::read16(bytes, i);
  if (i < bytes.size()) sum += static_cast<std::uint32_t>(static_cast<std::uint8_t>(bytes[i]) << 8);
  return sum;
}

std::uint16_t fold(std::uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(~sum & 0xffff);
}

std::string_view address_bytes(const IpEndpoint& e) {
  return {reinterpret_cast<const char*>(e.addr.data()), e.v6 ? 16u : 4u};
}

// The pseudo header both UDP and TCP checksums cover (RFC 768, RFC 793, RFC 8200 8.1).
std::uint32_t pseudo_header_sum(const IpEndpoint& src, const IpEndpoint& dst, std::uint8_t protocol,
                                std::size_t length) {
  std::uint32_t sum = sum_words(address_bytes(src));
  sum = sum_words(address_bytes(dst), sum);
  sum += static_cast<std::uint32_t>(length >> 16) + static_cast<std::uint32_t>(length & 0xffff);
  return sum + protocol;
}

// The IP header (v4 with its checksum, or v6) in front of a transport segment.
// dont_fragment: what Linux sets on TCP (path MTU discovery); UDP datagrams go
// without it so fragment_ipv4 may split them.
std::string ip_packet(const IpEndpoint& src, const IpEndpoint& dst, std::uint8_t protocol, std::string_view segment,
                      std::uint16_t ip_id, bool dont_fragment) {
  std::string out;
  if (src.v6) {
    out.assign(kIpv6Header, '\0');
    out[0] = 0x60;
    wire::write16(out, 4, static_cast<std::uint16_t>(segment.size()));
    out[6] = static_cast<char>(protocol);
    out[7] = static_cast<char>(kTtl);
    out.replace(8, 16, address_bytes(src));
    out.replace(24, 16, address_bytes(dst));
  } else {
    out.assign(kIpv4Header, '\0');
    out[0] = 0x45;
    wire::write16(out, 2, static_cast<std::uint16_t>(kIpv4Header + segment.size()));
    wire::write16(out, 4, ip_id);
    wire::write16(out, 6, dont_fragment ? 0x4000 : 0);
    out[8] = static_cast<char>(kTtl);
    out[9] = static_cast<char>(protocol);
    out.replace(12, 4, address_bytes(src));
    out.replace(16, 4, address_bytes(dst));
    wire::write16(out, 10, fold(sum_words(out)));
  }
  out.append(segment);
  return out;
}

// Whether a segment of this size fits in one IP packet of the family.
bool fits(const IpEndpoint& src, std::size_t segment) {
  return src.v6 ? segment <= kMaxIpv6Payload : kIpv4Header + segment <= kMaxIpv4Total;
}

}  // namespace

std::optional<IpEndpoint> IpEndpoint::parse(std::string_view host_port) {
  IpEndpoint e;
  std::string_view host, port;
  if (host_port.starts_with('[')) {
    auto close = host_port.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = host_port.substr(1, close - 1);
    port = host_port.substr(close + 2);
    e.v6 = true;
  } else {
    auto colon = host_port.find(':');
    if (colon == std::string_view::npos || host_port.find(':', colon + 1) != std::string_view::npos) return std::nullopt;
    host = host_port.substr(0, colon);
    port = host_port.substr(colon + 1);
  }
  if (port.empty() || host.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), e.port);
  if (ec != std::errc() || end != port.data() + port.size()) return std::nullopt;
  char text[INET6_ADDRSTRLEN] = {};
  host.copy(text, host.size());
  if (inet_pton(e.v6 ? AF_INET6 : AF_INET, text, e.addr.data()) != 1) return std::nullopt;
  return e;
}

std::string IpEndpoint::to_string() const {
  // The capture reader formats two endpoints per message: IPv4 by hand, since
  // inet_ntop goes through sprintf (an eighth of analyze's time in a profile).
  char text[INET6_ADDRSTRLEN + 8] = {};
  char* out = text;
  char* const end = text + sizeof text;
  if (v6) {
    *out++ = '[';
    inet_ntop(AF_INET6, addr.data(), out, INET6_ADDRSTRLEN);
    out += std::strlen(out);
    *out++ = ']';
  } else {
    out = sip::write_ipv4(addr.data(), out);
  }
  *out++ = ':';
  out = std::to_chars(out, end, port).ptr;
  return std::string(text, out);
}

std::string build_udp_packet(const IpEndpoint& src, const IpEndpoint& dst, std::string_view payload,
                             std::uint16_t ip_id) {
  const std::size_t length = kUdpHeader + payload.size();
  if (src.v6 != dst.v6 || length > 0xffff || !fits(src, length)) return {};
  std::string udp(kUdpHeader, '\0');
  wire::write16(udp, 0, src.port);
  wire::write16(udp, 2, dst.port);
  wire::write16(udp, 4, static_cast<std::uint16_t>(length));
  udp.append(payload);
  auto sum = fold(sum_words(udp, pseudo_header_sum(src, dst, kProtoUdp, length)));
  wire::write16(udp, 6, sum == 0 ? 0xffff : sum);  // 0 would mean "no checksum" (RFC 768)
  return ip_packet(src, dst, kProtoUdp, udp, ip_id, false);
}

std::string build_tcp_packet(const IpEndpoint& src, const IpEndpoint& dst, std::uint32_t seq, std::uint32_t ack,
                             std::uint8_t flags, std::string_view payload) {
  const std::size_t length = kTcpHeader + payload.size();
  if (src.v6 != dst.v6 || !fits(src, length)) return {};
  std::string tcp(kTcpHeader, '\0');
  wire::write16(tcp, 0, src.port);
  wire::write16(tcp, 2, dst.port);
  wire::write32(tcp, 4, seq);
  wire::write32(tcp, 8, (flags & tcp_flag::ack) ? ack : 0);
  tcp[12] = static_cast<char>((kTcpHeader / 4) << 4);
  tcp[13] = static_cast<char>(flags);
  wire::write16(tcp, 14, 0xffff);  // window
  tcp.append(payload);
  wire::write16(tcp, 16, fold(sum_words(tcp, pseudo_header_sum(src, dst, kProtoTcp, length))));
  return ip_packet(src, dst, kProtoTcp, tcp, 0, true);
}

std::vector<std::string> fragment_ipv4(std::string_view packet, std::size_t mtu) {
  if (packet.size() < kIpv4Header || (static_cast<std::uint8_t>(packet[0]) >> 4) != 4) return {};
  const std::size_t header = (static_cast<std::uint8_t>(packet[0]) & 0x0f) * 4u;
  const std::size_t total = wire::read16(packet, 2);
  if (header < kIpv4Header || total < header || total > packet.size()) return {};
  if (total <= mtu) return {std::string(packet.substr(0, total))};
  // Every fragment but the last carries a multiple of 8 bytes (RFC 791).
  if (mtu < header + 8) return {};
  const std::size_t chunk = (mtu - header) / 8 * 8;
  const std::uint16_t flags_offset = wire::read16(packet, 6);
  const std::size_t base = static_cast<std::size_t>(flags_offset & 0x1fff) * 8;
  const bool more_after = (flags_offset & 0x2000) != 0;  // the packet is itself a fragment, not the last

  // Later fragments keep only the options marked "copied" (RFC 791 3.1).
  std::string later_options;
  for (std::size_t i = kIpv4Header; i < header;) {
    auto type = static_cast<std::uint8_t>(packet[i]);
    if (type == 0) break;  // end of options
    if (type == 1) {       // no-operation
      ++i;
      continue;
    }
    if (i + 1 >= header) break;
    std::size_t len = static_cast<std::uint8_t>(packet[i + 1]);
    if (len < 2 || i + len > header) break;
    if (type & 0x80) later_options.append(packet.substr(i, len));
    i += len;
  }
  later_options.resize((later_options.size() + 3) / 4 * 4, '\0');

  const std::string_view payload = packet.substr(header, total - header);
  std::vector<std::string> out;
  for (std::size_t off = 0; off < payload.size(); off += chunk) {
    auto piece = payload.substr(off, chunk);
    const bool last = off + piece.size() == payload.size();
    std::string frag(packet.substr(0, kIpv4Header));
    if (off == 0) frag.append(packet.substr(kIpv4Header, header - kIpv4Header));
    else frag.append(later_options);
    const auto frag_header = frag.size();
    frag[0] = static_cast<char>(0x40 | (frag_header / 4));
    wire::write16(frag, 2, static_cast<std::uint16_t>(frag_header + piece.size()));
    // A fragment cannot carry "don't fragment"; MF on all but the last.
    wire::write16(frag, 6, static_cast<std::uint16_t>(((!last || more_after) ? 0x2000 : 0) | ((base + off) / 8)));
    wire::write16(frag, 10, 0);
    wire::write16(frag, 10, fold(sum_words(frag)));
    frag.append(piece);
    out.push_back(std::move(frag));
  }
  return out;
}

}  // namespace sw::capture
