#include "tcp_stream.hpp"

#include <algorithm>

#include "diag/capture/sniff.hpp"
#include "proxy/sip/message.hpp"

namespace sw::capture {
namespace {


// A stream whose first bytes hold no start line is not SIP.
constexpr std::size_t kDecideWithin = 16 * 1024;

// Offset of the first line (after the first) that is a SIP start line, or npos.
std::size_t find_start_line(std::string_view bytes) {
  for (auto eol = bytes.find('\n'); eol != std::string_view::npos; eol = bytes.find('\n', eol + 1)) {
    if (eol + 1 < bytes.size() && starts_with_sip_start_line(bytes.substr(eol + 1))) return eol + 1;
  }
  return std::string_view::npos;
}

// Relative position of `seq` against `base` in sequence space (RFC 9293 3.4).
std::int32_t seq_diff(std::uint32_t seq, std::uint32_t base) { return static_cast<std::int32_t>(seq - base); }

// Both endpoints' bytes: cheaper than formatting them, and just as unique.
std::string stream_key(const Segment& s) {
  std::string key;
  key.reserve(2 * (sizeof s.src.addr + 3));
  for (const auto* e : {&s.src, &s.dst}) {
    key.push_back(e->v6 ? '6' : '4');
    key.append(reinterpret_cast<const char*>(e->addr.data()), e->addr.size());
    key.push_back(static_cast<char>(e->port >> 8));
    key.push_back(static_cast<char>(e->port & 0xff));
  }
  return key;
}

}  // namespace

void TcpReassembler::add(const Segment& seg, ReadStats& stats, const Emit& emit) {
  auto key = stream_key(seg);
  auto it = streams_.find(key);
  if (it == streams_.end()) {
    if (seg.payload.empty() && !(seg.flags & tcp_flag::syn)) return;  // a bare ACK/FIN of a stream never seen
    if (streams_.size() >= limits_.max_streams) evict_oldest(stats);
    lru_.push_front(key);
    it = streams_.emplace(std::move(key), Stream{}).first;
    it->second.src = seg.src;
    it->second.dst = seg.dst;
    it->second.lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, it->second.lru);
  }
  auto& s = it->second;
  held_ -= held(s);
  if (seg.flags & tcp_flag::syn) {
    s.started = true;
    s.next_seq = seg.seq + 1;
    s.buffer.clear();
    s.ahead.clear();
    s.ahead_bytes = 0;
  } else if (!seg.payload.empty()) {
    if (!s.started) {  // the capture began mid-stream
      s.started = true;
      s.next_seq = seg.seq;
    }
    auto payload = seg.payload;
    auto diff = seq_diff(seg.seq, s.next_seq);
    if (diff < 0) {
      auto already = static_cast<std::size_t>(-static_cast<std::int64_t>(diff));
      if (already >= payload.size()) {
        ++stats.tcp_retransmissions;
        payload = {};
      } else {
        payload.remove_prefix(already);
        diff = 0;
      }
    }
    if (!payload.empty() && diff > 0) {
      ++stats.tcp_out_of_order;
      auto& held_there = s.ahead[s.next_offset + static_cast<std::uint64_t>(diff)];
      if (payload.size() > held_there.size()) {  // a longer retransmission covers more
        s.ahead_bytes += payload.size() - held_there.size();
        held_there.assign(payload);
      }
      if (s.ahead_bytes > limits_.max_buffered) skip_hole(s, stats);  // the hole will not fill
    } else if (!payload.empty()) {
      append(s, payload);
      fill_from_ahead(s);
    }
  }
  frame(s, seg, stats, emit);
  if (seg.flags & (tcp_flag::fin | tcp_flag::rst)) s.closing = true;
  // A closed stream goes once nothing waits for a hole: a segment that was
  // lost before the FIN may still come as a retransmission.
  if (s.closing && s.ahead.empty()) {
    if (!s.buffer.empty()) ++stats.tcp_incomplete;
    erase(it);
    return;
  }
  // A stream that held a big message should not keep its allocation idle.
  if (s.buffer.empty() && s.buffer.capacity() > 64 * 1024) s.buffer.shrink_to_fit();
  held_ += held(s);
  while (held_ > limits_.max_held && !streams_.empty()) evict_oldest(stats);
}

void TcpReassembler::append(Stream& s, std::string_view bytes) {
  s.buffer.append(bytes);
  s.next_seq += static_cast<std::uint32_t>(bytes.size());
  s.next_offset += bytes.size();
}

void TcpReassembler::fill_from_ahead(Stream& s) {
  while (!s.ahead.empty() && s.ahead.begin()->first <= s.next_offset) {
    auto first = s.ahead.begin();
    auto already = s.next_offset - first->first;
    if (already < first->second.size()) append(s, std::string_view(first->second).substr(already));
    s.ahead_bytes -= first->second.size();
    s.ahead.erase(first);
  }
}

// Skips to the first bytes held past the hole; framing resynchronises on the
// next start line.
void TcpReassembler::skip_hole(Stream& s, ReadStats& stats) {
  if (s.ahead.empty()) return;
  ++stats.tcp_gaps;
  auto skipped = s.ahead.begin()->first - s.next_offset;
  s.next_seq += static_cast<std::uint32_t>(skipped);
  s.next_offset += skipped;
  s.buffer.clear();
  fill_from_ahead(s);
}

void TcpReassembler::frame(Stream& s, const Segment& completing, ReadStats& stats, const Emit& emit) {
  if (s.kind == Kind::tls || s.kind == Kind::other) {
    if (!completing.payload.empty()) ++(s.kind == Kind::tls ? stats.tls_packets : stats.non_sip);
    s.buffer.clear();
    return;
  }
  std::size_t used = 0;
  while (true) {
    std::string_view rest(s.buffer);
    rest.remove_prefix(used);
    auto keepalive = rest.find_first_not_of("\r\n");
    if (keepalive == std::string_view::npos) {
      used = s.buffer.size();
      break;
    }
    used += keepalive;
    rest.remove_prefix(keepalive);
    if (s.kind == Kind::unknown) {
      if (starts_like_tls(rest)) {
        s.kind = Kind::tls;
        ++stats.tls_packets;
        used = s.buffer.size();
        break;
      }
      if (rest.substr(0, kMaxStartLine).find('\n') == std::string_view::npos && rest.size() < kMaxStartLine) break;
      if (!starts_with_sip_start_line(rest)) {
        // A capture that began mid-message shows SIP at the next start line;
        // a stream with none in its first bytes is something else.
        auto next = find_start_line(rest);
        if (next == std::string_view::npos) {
          if (rest.size() >= kDecideWithin) {
            s.kind = Kind::other;
            ++stats.non_sip;
            used = s.buffer.size();
          }
          break;
        }
        used += next;
        rest.remove_prefix(next);
      }
      s.kind = Kind::sip;
    }
    if (!starts_with_sip_start_line(rest)) {
      // After a gap or a bad message: skip to the next start line.
      auto next = find_start_line(rest);
      if (next == std::string_view::npos) {
        // Keep the last line: it may be a start line still arriving.
        auto last_eol = rest.rfind('\n');
        if (last_eol != std::string_view::npos) used += last_eol + 1;
        else if (rest.size() > kMaxStartLine) used = s.buffer.size();
        break;
      }
      used += next;
      continue;
    }
    auto length = sip::frame_stream(rest, kCaptureLimits);
    if (!length) {
      if (length.error().code == Errc::incomplete) {
        if (rest.size() > limits_.max_buffered) {  // never completes within bounds
          ++stats.tcp_gaps;
          used = s.buffer.size();
        }
        break;
      }
      used += rest.find('\n') + 1;  // unframeable: resynchronise past its start line
      continue;
    }
    emit(rest.substr(0, *length), completing);
    ++stats.sip_messages;
    used += *length;
  }
  s.buffer.erase(0, used);
}

void TcpReassembler::erase(std::unordered_map<std::string, Stream>::iterator it) {
  held_ -= held(it->second);
  lru_.erase(it->second.lru);
  streams_.erase(it);
}

void TcpReassembler::evict_oldest(ReadStats& stats) {
  auto it = streams_.find(lru_.back());
  if (!it->second.buffer.empty() || !it->second.ahead.empty()) ++stats.tcp_incomplete;
  erase(it);
}

void TcpReassembler::finish(ReadStats& stats, const Emit& emit) {
  for (auto& [key, s] : streams_) {
    Segment end;
    end.tcp = true;
    end.src = s.src;
    end.dst = s.dst;
    while (!s.ahead.empty()) {
      skip_hole(s, stats);
      frame(s, end, stats, emit);
    }
    if (s.kind == Kind::sip && !s.buffer.empty()) ++stats.tcp_incomplete;
    else if (s.kind == Kind::unknown && !s.buffer.empty()) ++stats.non_sip;  // too short to tell: not SIP
  }
  streams_.clear();
  lru_.clear();
  held_ = 0;
}

}  // namespace sw::capture
