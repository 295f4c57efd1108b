#pragma once
// From a captured frame to a transport payload: link layer (Ethernet with VLAN
// tags, Linux cooked SLL/SLL2, raw IP, BSD loopback), IPv4/IPv6 with fragment
// reassembly, then UDP or TCP. Pure: frames and their capture time in,
// segments out.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>

#include "diag/capture/captured.hpp"
#include "diag/capture/packet_builder.hpp"

namespace sw::capture {

enum class LinkType : std::uint8_t {
  ethernet,
  linux_sll,
  linux_sll2,
  raw_ip,     // version from the first nibble
  ipv4,
  ipv6,
  bsd_null,   // 4-byte address family in the capturing host's byte order
  bsd_loop,   // 4-byte address family in network byte order
};

struct Segment {
  bool tcp = false;
  IpEndpoint src, dst;
  std::uint32_t seq = 0;   // TCP
  std::uint8_t flags = 0;  // TCP (tcp_flag::*)
  std::string_view payload;
};

enum class Decoded : std::uint8_t {
  segment,          // `out` holds a UDP datagram or TCP segment
  fragment_held,    // an IP fragment, kept until its datagram is whole
  unsupported,      // not IP, or IP carrying neither UDP nor TCP
  malformed,        // too short for its own headers
};

// Holds IP fragments until their datagram is whole (RFC 791 / RFC 8200 4.5),
// bounded in datagrams and bytes; datagrams not completed within `timeout` of
// capture time are dropped and counted.
class Defragmenter {
 public:
  struct Limits {
    std::size_t max_pending = 1024;
    std::size_t max_pieces = 512;               // per datagram: real senders cut at an MTU, not at 8 bytes
    std::size_t max_bytes = 2 * 65535;          // per datagram, overlaps included
    std::chrono::seconds timeout{30};
  };
  // Adds one fragment's payload (offset in bytes, more = MF flag). Returns the
  // whole transport payload when this fragment completes it, valid until the next call.
  // key names the datagram (addresses, id and protocol).
  std::optional<std::string_view> add(const std::string& key, std::size_t offset, bool more, std::string_view payload,
                                      TimePoint now, ReadStats& stats);
  // Counts what is still pending as incomplete (end of the capture).
  void finish(ReadStats& stats);

 private:
  struct Pending {
    std::map<std::size_t, std::string> pieces;  // offset -> bytes
    std::size_t total = 0;                      // known once the last fragment arrived
    std::size_t bytes = 0;                      // held in pieces
    TimePoint first_seen;
  };
  void expire(TimePoint now, ReadStats& stats);

  Limits limits_;
  std::unordered_map<std::string, Pending> pending_;
  TimePoint last_expiry_{};
  std::string completed_;
};

class PacketDecoder {
 public:
  Decoded decode(LinkType link, std::string_view frame, TimePoint time, Segment& out, ReadStats& stats);
  void finish(ReadStats& stats) { defrag_.finish(stats); }

 private:
  Decoded decode_ip(std::string_view packet, TimePoint time, Segment& out, ReadStats& stats);
  Decoded decode_transport(std::uint8_t protocol, const IpEndpoint& src, const IpEndpoint& dst,
                           std::string_view payload, Segment& out, ReadStats& stats);

  Defragmenter defrag_;
};

}  // namespace sw::capture
