#include "tcp_stream.hpp"

#include <algorithm>

#include "proxy/sip/message.hpp"

namespace sw::capture {
namespace {

constexpr std::size_t kMaxStartLine = 1024;

bool is_token_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
         std::string_view("-.!%*_+`'~").find(c) != std::string_view::npos;
}

bool is_start_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (line.starts_with("SIP/2.0 ")) {
    return line.size() >= 11 && std::all_of(line.begin() + 8, line.begin() + 11, [](char c) { return c >= '0' && c <= '9'; });
  }
  auto sp = line.find(' ');
  if (sp == 0 || sp == std::string_view::npos || !line.ends_with(" SIP/2.0")) return false;
  return std::all_of(line.begin(), line.begin() + static_cast<std::ptrdiff_t>(sp), is_token_char) &&
         line.size() > sp + 1 + 8;
}

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

bool starts_with_sip_start_line(std::string_view bytes) {
  auto eol = bytes.substr(0, kMaxStartLine).find('\n');
  return eol != std::string_view::npos && is_start_line(bytes.substr(0, eol));
}

bool starts_like_tls(std::string_view bytes) {
  if (bytes.size() < 3) return false;
  auto type = static_cast<std::uint8_t>(bytes[0]);
  auto major = static_cast<std::uint8_t>(bytes[1]);
  // Record types 20-23 (change_cipher_spec, alert, handshake, application_data);
  // version 3.x for TLS, 254.x for DTLS.
  return type >= 20 && type <= 23 && (major == 3 || major == 254);
}

void TcpReassembler::add(const Segment& seg, TimePoint time, ReadStats& stats, const Emit& emit) {
  auto key = stream_key(seg);
  auto it = streams_.find(key);
  if (it == streams_.end()) {
    if (seg.payload.empty() && !(seg.flags & tcp_flag::syn)) return;  // a bare ACK/FIN of a stream never seen
    if (streams_.size() >= limits_.max_streams) evict_oldest(stats);
    it = streams_.emplace(std::move(key), Stream{}).first;
  }
  auto& s = it->second;
  s.last_seen = time;
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
      s.ahead.emplace_back(seg.seq, std::string(payload));
      s.ahead_bytes += payload.size();
      if (s.ahead_bytes > limits_.max_buffered) {
        // The hole will not fill: skip to the first bytes held and resynchronise
        // on the next start line.
        ++stats.tcp_gaps;
        auto first = std::min_element(s.ahead.begin(), s.ahead.end(), [&](const auto& a, const auto& b) {
          return seq_diff(a.first, s.next_seq) < seq_diff(b.first, s.next_seq);
        });
        s.next_seq = first->first;
        s.buffer.clear();
        fill_from_ahead(s);
      }
    } else if (!payload.empty()) {
      append(s, payload);
      fill_from_ahead(s);
    }
  }
  frame(s, seg, stats, emit);
  if (seg.flags & (tcp_flag::fin | tcp_flag::rst)) {
    if (!s.buffer.empty() || !s.ahead.empty()) ++stats.tcp_incomplete;
    streams_.erase(it);
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
}

void TcpReassembler::fill_from_ahead(Stream& s) {
  bool progress = true;
  while (progress && !s.ahead.empty()) {
    progress = false;
    for (auto it = s.ahead.begin(); it != s.ahead.end();) {
      auto diff = seq_diff(it->first, s.next_seq);
      if (diff > 0) {
        ++it;
        continue;
      }
      auto already = static_cast<std::size_t>(-static_cast<std::int64_t>(diff));
      if (already < it->second.size()) {
        append(s, std::string_view(it->second).substr(already));
        progress = true;
      }
      s.ahead_bytes -= it->second.size();
      it = s.ahead.erase(it);
    }
  }
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
    auto length = sip::frame_stream(rest);
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

void TcpReassembler::evict_oldest(ReadStats& stats) {
  auto oldest = std::min_element(streams_.begin(), streams_.end(), [](const auto& a, const auto& b) {
    return a.second.last_seen < b.second.last_seen;
  });
  if (!oldest->second.buffer.empty()) ++stats.tcp_incomplete;
  held_ -= held(oldest->second);
  streams_.erase(oldest);
}

void TcpReassembler::finish(ReadStats& stats) {
  for (const auto& [key, s] : streams_) {
    if (s.kind == Kind::sip && (!s.buffer.empty() || !s.ahead.empty())) ++stats.tcp_incomplete;
    else if (s.kind == Kind::unknown && !s.buffer.empty()) ++stats.non_sip;  // too short to tell: not SIP
  }
  streams_.clear();
  held_ = 0;
}

}  // namespace sw::capture
