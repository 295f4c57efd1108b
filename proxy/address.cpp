#include "address.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "proxy/sip/text.hpp"

namespace sw::proxy {

std::optional<Address> Address::from_ip(std::string_view ip, std::uint16_t port) {
  if (ip.size() > 2 && ip.front() == '[' && ip.back() == ']') ip = ip.substr(1, ip.size() - 2);
  Address a;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&a.ss_);
  if (sip::read_ipv4(ip, reinterpret_cast<unsigned char*>(&v4->sin_addr))) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return a;
  }
  char buf[INET6_ADDRSTRLEN + 1];
  if (ip.size() >= sizeof(buf)) return std::nullopt;
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&a.ss_);
  if (inet_pton(AF_INET6, buf, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return a;
  }
  return std::nullopt;
}

Address Address::from_sockaddr(const sockaddr* sa) {
  Address a;
  if (sa->sa_family == AF_INET) std::memcpy(&a.ss_, sa, sizeof(sockaddr_in));
  else if (sa->sa_family == AF_INET6) std::memcpy(&a.ss_, sa, sizeof(sockaddr_in6));
  return a;
}

socklen_t Address::len() const {
  return family() == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
}

std::uint16_t Address::port() const {
  if (family() == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_port);
  if (family() == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_port);
  return 0;
}

Address Address::with_port(std::uint16_t port) const {
  Address out = *this;
  if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&out.ss_)->sin_port = htons(port);
  if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&out.ss_)->sin6_port = htons(port);
  return out;
}

std::string Address::ip() const {
  char buf[INET6_ADDRSTRLEN] = "";
  return std::string(buf, write_ip(buf));
}

char* Address::write_ip(char* out) const {
  if (family() == AF_INET)
    return sip::write_ipv4(reinterpret_cast<const unsigned char*>(&reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr),
                           out);
  if (family() == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr, out, INET6_ADDRSTRLEN);
    return out + std::strlen(out);
  }
  return out;
}

std::string Address::host() const { return family() == AF_INET6 ? "[" + ip() + "]" : ip(); }

std::string Address::to_string() const {
  std::string out;
  append_to(out);
  return out;
}

void Address::append_to(std::string& out) const {
  // Formatted for every message (flow keys, Via received=, observers): no sprintf.
  char buf[INET6_ADDRSTRLEN + 8];
  char* end = buf;
  if (family() == AF_INET6) *end++ = '[';
  end = write_ip(end);
  if (family() == AF_INET6) *end++ = ']';
  *end++ = ':';
  end = std::to_chars(end, buf + sizeof buf, port()).ptr;
  out.append(buf, end);
}

bool Address::same_ip(const Address& o) const {
  if (family() != o.family()) return false;
  if (family() == AF_INET)
    return reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in*>(&o.ss_)->sin_addr.s_addr;
  if (family() == AF_INET6)
    return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr,
                       &reinterpret_cast<const sockaddr_in6*>(&o.ss_)->sin6_addr, sizeof(in6_addr)) == 0;
  return false;
}

bool Address::is_any() const {
  static const auto any4 = *from_ip("0.0.0.0", 0);
  static const auto any6 = *from_ip("::", 0);
  return same_ip(any4) || same_ip(any6);
}

bool Address::is_broadcast_or_multicast() const {
  if (family() == AF_INET) {
    auto ip = ntohl(reinterpret_cast<const sockaddr_in*>(&ss_)->sin_addr.s_addr);
    return ip == 0xffffffffu || (ip >> 28) == 0xe;
  }
  return family() == AF_INET6 && reinterpret_cast<const sockaddr_in6*>(&ss_)->sin6_addr.s6_addr[0] == 0xff;
}

std::string flow_token(const Flow& flow) {
  // <t>[listener]-ip-port: '-' never occurs in an IP literal, and ':' is allowed in URI params.
  std::string token(flow.transport == Transport::udp ? "u" : flow.transport == Transport::tcp ? "t" : "s");
  if (flow.listener != kAnyListener) token += std::to_string(flow.listener);
  return token + "-" + flow.remote.ip() + "-" + std::to_string(flow.remote.port());
}

std::optional<Flow> parse_flow_token(std::string_view token) {
  if (token.empty()) return std::nullopt;
  Flow f;
  switch (token[0]) {
    case 'u': f.transport = Transport::udp; break;
    case 't': f.transport = Transport::tcp; break;
    case 's': f.transport = Transport::tls; break;
    default: return std::nullopt;
  }
  auto first_dash = token.find('-');
  if (first_dash == std::string_view::npos) return std::nullopt;
  if (first_dash > 1) {
    auto listener = sip::parse_uint<std::uint32_t>(token.substr(1, first_dash - 1));
    if (!listener) return std::nullopt;
    f.listener = *listener;
  }
  auto rest = token.substr(first_dash + 1);
  auto dash = rest.rfind('-');
  if (dash == std::string_view::npos) return std::nullopt;
  auto port = sip::parse_uint<std::uint16_t>(rest.substr(dash + 1));
  if (!port) return std::nullopt;
  auto addr = Address::from_ip(rest.substr(0, dash), *port);
  if (!addr) return std::nullopt;
  f.remote = *addr;
  return f;
}

std::uint16_t default_port(Transport t) { return t == Transport::tls ? 5061 : 5060; }

}  // namespace sw::proxy
