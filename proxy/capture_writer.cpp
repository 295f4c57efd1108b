#include "capture_writer.hpp"

#include <algorithm>
#include <vector>

#include "proxy/sip/message.hpp"

namespace sw::proxy {

CaptureWriter::CaptureWriter(const std::string& path, std::shared_ptr<spdlog::logger> log)
    : out_(path), log_(std::move(log)) {}

void CaptureWriter::on_message(const diag::Observed& e) {
  if (failed_ || !out_.ok()) return;
  auto self = capture::IpEndpoint::parse(e.self);
  auto peer = capture::IpEndpoint::parse(e.peer);
  if (!self || !peer || self->v6 != peer->v6) return skip(e, "no address of the same family for both ends");
  const bool received = e.direction == diag::Direction::received;
  const auto& src = received ? *peer : *self;
  const auto& dst = received ? *self : *peer;
  const std::string_view bytes = e.wire.empty() ? e.message.raw : e.wire;

  if (e.transport != "tcp") {
    auto packet = capture::build_udp_packet(src, dst, bytes, ip_id_++);
    if (packet.empty()) return skip(e, "datagram too large for one IP packet");
    out_.write(e.time, packet);
    return;
  }
  bool fresh = false;
  auto& s = stream(std::string(e.self) + "|" + std::string(e.peer), e.time, fresh);
  if (fresh) {
    // A SYN each way gives the numbering a start: a reader resets the stream
    // on it, so a connection forgotten and numbered anew is never mistaken
    // for a retransmission of its old bytes.
    out_.write(e.time, capture::build_tcp_packet(*peer, *self, s.from_peer - 1, 0, capture::tcp_flag::syn, {}));
    out_.write(e.time, capture::build_tcp_packet(*self, *peer, s.from_self - 1, s.from_peer,
                                                 capture::tcp_flag::syn | capture::tcp_flag::ack, {}));
  }
  auto& seq = received ? s.from_peer : s.from_self;
  const auto ack = received ? s.from_self : s.from_peer;
  for (std::size_t off = 0; off < bytes.size(); off += kMaxSegment) {
    auto piece = bytes.substr(off, kMaxSegment);
    out_.write(e.time, capture::build_tcp_packet(src, dst, seq, ack, capture::tcp_flag::psh | capture::tcp_flag::ack,
                                                 piece));
    seq += static_cast<std::uint32_t>(piece.size());  // wraps modulo 2^32, as TCP's does
  }
}

CaptureWriter::Stream& CaptureWriter::stream(const std::string& key, capture::TimePoint time, bool& fresh) {
  auto it = streams_.find(key);
  fresh = it == streams_.end();
  if (fresh) {
    if (streams_.size() >= kMaxStreams) {
      // Closed connections are not reported to observers: forget the least
      // recently used half in one pass, so the cost stays constant per message.
      std::vector<std::uint64_t> uses;
      uses.reserve(streams_.size());
      for (const auto& [k, v] : streams_) uses.push_back(v.used);
      auto middle = uses.begin() + static_cast<std::ptrdiff_t>(uses.size() / 2);
      std::nth_element(uses.begin(), middle, uses.end());
      std::erase_if(streams_, [&](const auto& kv) { return kv.second.used < *middle; });
    }
    // The initial sequence number follows the clock (4 µs ticks, RFC 793
    // 3.3), so a connection forgotten above and seen again most likely
    // continues ahead of its old numbers rather than looking like a retransmission.
    auto ticks = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count() / 4;
    auto isn = static_cast<std::uint32_t>(ticks);
    it = streams_.emplace(key, Stream{isn, isn, 0}).first;
  }
  it->second.used = ++uses_;
  return it->second;
}

void CaptureWriter::skip(const diag::Observed& e, const char* why) {
  // One warning says the capture is incomplete; the rest only at debug level.
  auto level = skip_logged_ ? spdlog::level::debug : spdlog::level::warn;
  skip_logged_ = true;
  log_->log(level, "diag.capture: not written: {} {} {} (call-id={}): {}", e.transport, e.self, e.peer,
            e.message.value(sip::HeaderId::CallId), why);
}

void CaptureWriter::flush() {
  if (failed_ || out_.flush()) return;
  failed_ = true;
  log_->error("diag.capture: {}; nothing more is written to it", out_.error());
}

}  // namespace sw::proxy
