#include "packet.hpp"

#include <algorithm>
#include <cstring>

#include "diag/capture/wire.hpp"

namespace sw::capture {
namespace {

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
using wire::kProtoTcp;
using wire::kProtoUdp;
constexpr std::size_t kMaxDatagram = 65535;

bool is_vlan(std::uint16_t ethertype) { return ethertype == 0x8100 || ethertype == 0x88a8 || ethertype == 0x9100; }

// The family values BSD-style loopback headers use for IPv6 differ by OS.
bool is_inet6_family(std::uint32_t family) { return family == 24 || family == 28 || family == 30 || family == 10; }

std::string fragment_key(std::string_view src, std::string_view dst, std::uint32_t id, std::uint8_t protocol) {
  std::string key;
  key.reserve(src.size() + dst.size() + 6);
  key.append(src);
  key.append(dst);
  key.append(reinterpret_cast<const char*>(&id), sizeof id);
  key.push_back(static_cast<char>(protocol));
  return key;
}

}  // namespace

std::optional<std::string_view> Defragmenter::add(const std::string& key, std::size_t offset,
                                                  bool more, std::string_view payload, TimePoint now,
                                                  ReadStats& stats) {
  ++stats.ip_fragments;
  expire(now, stats);
  if (offset + payload.size() > kMaxDatagram) {
    ++stats.malformed;
    return std::nullopt;
  }
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    if (pending_.size() >= limits_.max_pending) {
      // Full: the oldest datagram gives way; it is counted as never completed.
      auto oldest = std::min_element(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) {
        return a.second.first_seen < b.second.first_seen;
      });
      pending_.erase(oldest);
      ++stats.incomplete_fragments;
    }
    it = pending_.emplace(key, Pending{}).first;
    it->second.first_seen = now;
  }
  auto& p = it->second;
  auto& piece = p.pieces[offset];  // a retransmitted fragment replaces its twin
  p.bytes = p.bytes - piece.size() + payload.size();
  piece.assign(payload);
  if (p.pieces.size() > limits_.max_pieces || p.bytes > limits_.max_bytes) {
    // Crafted to make reassembly costly, not a datagram anyone sent: give it up.
    ++stats.incomplete_fragments;
    pending_.erase(it);
    return std::nullopt;
  }
  if (!more) p.total = offset + payload.size();
  if (p.total == 0) return std::nullopt;

  // Whole when the pieces cover [0, total) without a hole (overlaps allowed).
  std::size_t covered = 0;
  for (const auto& [at, bytes] : p.pieces) {
    if (at > covered) return std::nullopt;
    covered = std::max(covered, at + bytes.size());
  }
  if (covered < p.total) return std::nullopt;
  completed_.assign(p.total, '\0');
  for (const auto& [at, bytes] : p.pieces) {
    auto n = std::min(bytes.size(), p.total - std::min(at, p.total));
    std::memcpy(completed_.data() + at, bytes.data(), n);
  }
  pending_.erase(it);
  ++stats.reassembled_datagrams;
  return std::string_view(completed_);
}

void Defragmenter::expire(TimePoint now, ReadStats& stats) {
  if (now - last_expiry_ < std::chrono::seconds(1)) return;  // once per second of capture time is enough
  last_expiry_ = now;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (now - it->second.first_seen > limits_.timeout) {
      ++stats.incomplete_fragments;
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
}

void Defragmenter::finish(ReadStats& stats) {
  stats.incomplete_fragments += pending_.size();
  pending_.clear();
}

Decoded PacketDecoder::decode(LinkType link, std::string_view frame, TimePoint time, Segment& out,
                              ReadStats& stats) {
  std::uint16_t ethertype = 0;
  switch (link) {
    case LinkType::ethernet: {
      if (frame.size() < 14) return Decoded::malformed;
      ethertype = wire::read16(frame, 12);
      std::size_t at = 14;
      while (is_vlan(ethertype)) {  // 802.1Q and QinQ: 4 bytes per tag
        if (frame.size() < at + 4) return Decoded::malformed;
        ethertype = wire::read16(frame, at + 2);
        at += 4;
      }
      frame.remove_prefix(at);
      break;
    }
    case LinkType::linux_sll:
      if (frame.size() < 16) return Decoded::malformed;
      ethertype = wire::read16(frame, 14);
      frame.remove_prefix(16);
      break;
    case LinkType::linux_sll2:
      if (frame.size() < 20) return Decoded::malformed;
      ethertype = wire::read16(frame, 0);
      frame.remove_prefix(20);
      break;
    case LinkType::bsd_null:
    case LinkType::bsd_loop: {
      if (frame.size() < 4) return Decoded::malformed;
      std::uint32_t family = wire::read32(frame, 0);
      // DLT_NULL is in the capturing host's order: accept either.
      std::uint32_t swapped = __builtin_bswap32(family);
      if (family == 2 || (link == LinkType::bsd_null && swapped == 2)) ethertype = kEtherIpv4;
      else if (is_inet6_family(family) || (link == LinkType::bsd_null && is_inet6_family(swapped))) ethertype = kEtherIpv6;
      else return Decoded::unsupported;
      frame.remove_prefix(4);
      break;
    }
    case LinkType::raw_ip:
      if (frame.empty()) return Decoded::malformed;
      ethertype = (static_cast<std::uint8_t>(frame[0]) >> 4) == 6 ? kEtherIpv6 : kEtherIpv4;
      break;
    case LinkType::ipv4: ethertype = kEtherIpv4; break;
    case LinkType::ipv6: ethertype = kEtherIpv6; break;
  }
  if (ethertype != kEtherIpv4 && ethertype != kEtherIpv6) return Decoded::unsupported;
  return decode_ip(frame, time, out, stats);
}

Decoded PacketDecoder::decode_ip(std::string_view packet, TimePoint time, Segment& out, ReadStats& stats) {
  if (packet.empty()) return Decoded::malformed;
  IpEndpoint src, dst;
  std::uint8_t version = static_cast<std::uint8_t>(packet[0]) >> 4;
  if (version == 4) {
    if (packet.size() < 20) return Decoded::malformed;
    std::size_t header = (static_cast<std::uint8_t>(packet[0]) & 0x0f) * 4u;
    std::size_t total = wire::read16(packet, 2);
    // Ethernet pads short frames, and TSO captures write 0 for big packets.
    if (total == 0) total = packet.size();
    if (header < 20 || total < header || packet.size() < total) return Decoded::malformed;
    packet = packet.substr(0, total);
    auto protocol = static_cast<std::uint8_t>(packet[9]);
    std::memcpy(src.addr.data(), packet.data() + 12, 4);
    std::memcpy(dst.addr.data(), packet.data() + 16, 4);
    std::uint16_t flags_offset = wire::read16(packet, 6);
    bool more = flags_offset & 0x2000;
    std::size_t offset = (flags_offset & 0x1fff) * 8u;
    auto payload = packet.substr(header);
    if (more || offset) {
      auto key = fragment_key(packet.substr(12, 4), packet.substr(16, 4), wire::read16(packet, 4), protocol);
      auto whole = defrag_.add(key, offset, more, payload, time, stats);
      if (!whole) return Decoded::fragment_held;
      payload = *whole;
    }
    return decode_transport(protocol, src, dst, payload, out, stats);
  }
  if (version != 6) return Decoded::unsupported;
  if (packet.size() < 40) return Decoded::malformed;
  src.v6 = dst.v6 = true;
  std::memcpy(src.addr.data(), packet.data() + 8, 16);
  std::memcpy(dst.addr.data(), packet.data() + 24, 16);
  std::size_t length = wire::read16(packet, 4);
  if (length == 0 || 40 + length > packet.size()) length = packet.size() - 40;  // jumbograms, truncation
  auto rest = packet.substr(40, length);
  auto next = static_cast<std::uint8_t>(packet[6]);
  // Walk the extension headers (RFC 8200 4) up to UDP, TCP or a fragment header.
  for (int hops = 0; hops < 8; ++hops) {
    if (next == kProtoTcp || next == kProtoUdp) return decode_transport(next, src, dst, rest, out, stats);
    if (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination options
      if (rest.size() < 8) return Decoded::malformed;
      std::size_t len = (static_cast<std::uint8_t>(rest[1]) + 1u) * 8u;
      if (rest.size() < len) return Decoded::malformed;
      next = static_cast<std::uint8_t>(rest[0]);
      rest.remove_prefix(len);
      continue;
    }
    if (next == 44) {  // fragment header
      if (rest.size() < 8) return Decoded::malformed;
      auto protocol = static_cast<std::uint8_t>(rest[0]);
      std::uint16_t offset_flags = wire::read16(rest, 2);
      std::size_t offset = (offset_flags >> 3) * 8u;
      bool more = offset_flags & 1;
      std::uint32_t id = wire::read32(rest, 4);
      auto key = fragment_key(packet.substr(8, 16), packet.substr(24, 16), id, protocol);
      auto whole = defrag_.add(key, offset, more, rest.substr(8), time, stats);
      if (!whole) return Decoded::fragment_held;
      // Only the first fragment carries the headers after the fragment header;
      // by then they are at the start of the rebuilt payload.
      return decode_transport(protocol, src, dst, *whole, out, stats);
    }
    return Decoded::unsupported;
  }
  return Decoded::unsupported;
}

Decoded PacketDecoder::decode_transport(std::uint8_t protocol, const IpEndpoint& src, const IpEndpoint& dst,
                                        std::string_view payload, Segment& out, ReadStats& stats) {
  out.src = src;
  out.dst = dst;
  if (protocol == kProtoUdp) {
    if (payload.size() < 8) return Decoded::malformed;
    out.tcp = false;
    out.src.port = wire::read16(payload, 0);
    out.dst.port = wire::read16(payload, 2);
    std::size_t length = wire::read16(payload, 4);
    // A bad length field (or 0 from offloading) falls back on what the IP layer says.
    if (length < 8 || length > payload.size()) length = payload.size();
    out.payload = payload.substr(8, length - 8);
    out.flags = 0;
    out.seq = 0;
    ++stats.udp_datagrams;
    return Decoded::segment;
  }
  if (protocol == kProtoTcp) {
    if (payload.size() < 20) return Decoded::malformed;
    std::size_t header = (static_cast<std::uint8_t>(payload[12]) >> 4) * 4u;
    if (header < 20 || header > payload.size()) return Decoded::malformed;
    out.tcp = true;
    out.src.port = wire::read16(payload, 0);
    out.dst.port = wire::read16(payload, 2);
    out.seq = wire::read32(payload, 4);
    out.flags = static_cast<std::uint8_t>(payload[13]);
    out.payload = payload.substr(header);
    ++stats.tcp_segments;
    return Decoded::segment;
  }
  return Decoded::unsupported;
}

}  // namespace sw::capture
