#pragma once
// Socket addresses and flows as plain values, usable by pure routing code.
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"

namespace sw::proxy {

using config::Transport;

class Address {
 public:
  Address() = default;
  static std::optional<Address> from_ip(std::string_view ip, std::uint16_t port);  // IPv6 with or without []
  static Address from_sockaddr(const sockaddr* sa);

  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&ss_); }
  socklen_t len() const;
  int family() const { return ss_.ss_family; }
  std::uint16_t port() const;
  Address with_port(std::uint16_t port) const;  // the same IP (and IPv6 scope), another port
  std::string ip() const;          // without brackets
  // Writes ip() at out (room for INET6_ADDRSTRLEN) and returns the end.
  char* write_ip(char* out) const;
  std::string host() const;        // IPv6 in brackets, for URIs and Via
  std::string to_string() const;   // host:port
  void append_to(std::string& out) const;  // host:port at the end of out, without a string of its own
  bool same_ip(const Address& o) const;
  bool operator==(const Address& o) const { return same_ip(o) && port() == o.port(); }
  bool is_any() const;             // 0.0.0.0 or ::
  bool is_broadcast_or_multicast() const;  // 255.255.255.255, 224.0.0.0/4, ff00::/8

 private:
  sockaddr_storage ss_{};
};

// Where a message came from or must go back to: the transport, the peer's
// address and, for TCP, the connection it arrived on (0 for UDP).
inline constexpr std::uint32_t kAnyListener = 0xffffffff;

struct Flow {
  Transport transport = Transport::udp;
  Address remote;
  std::uint64_t connection_id = 0;
  // The listener (socket) the peer talks to: replies must leave from it (RFC
  // 3581 4), and a NAT in front of a phone only lets that address back in.
  std::uint32_t listener = kAnyListener;
  bool same_peer(const Flow& o) const { return transport == o.transport && remote == o.remote; }
};

// Flow tokens ride in our Record-Route/Path URIs so that later requests in the
// dialog (or calls toward a registered phone) reach the flow behind a NAT.
std::string flow_token(const Flow& flow);
std::optional<Flow> parse_flow_token(std::string_view token);

std::uint16_t default_port(Transport t);

}  // namespace sw::proxy
