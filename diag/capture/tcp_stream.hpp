#pragma once
// TCP streams of a capture back in order (retransmitted and out-of-order
// segments, sequence wrap-around), then cut into SIP messages by Content-Length.
// A stream that opens with a TLS record is counted and skipped; one that is not
// SIP at all is counted as such. Memory is bounded per stream and in streams.
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "diag/capture/captured.hpp"
#include "diag/capture/packet.hpp"

namespace sw::capture {

// True when `bytes` starts with a SIP start line ("INVITE sip:... SIP/2.0" or
// "SIP/2.0 200 OK") ended by a line break.
bool starts_with_sip_start_line(std::string_view bytes);
// True when `bytes` starts like a TLS or DTLS record.
bool starts_like_tls(std::string_view bytes);

class TcpReassembler {
 public:
  struct Limits {
    std::size_t max_streams = 65536;
    std::size_t max_buffered = 256 * 1024;  // bytes held per stream, in order or ahead of a gap
    std::size_t max_held = 64 * 1024 * 1024;  // bytes held by all streams together
  };
  using Emit = std::function<void(std::string_view message, const Segment& completing)>;

  TcpReassembler() = default;
  explicit TcpReassembler(Limits limits) : limits_(limits) {}

  void add(const Segment& segment, TimePoint time, ReadStats& stats, const Emit& emit);
  // End of the capture: streams left inside a message are counted.
  void finish(ReadStats& stats);

 private:
  enum class Kind : std::uint8_t { unknown, sip, tls, other };
  struct Stream {
    bool started = false;
    std::uint32_t next_seq = 0;
    std::vector<std::pair<std::uint32_t, std::string>> ahead;  // segments past a hole
    std::size_t ahead_bytes = 0;
    std::string buffer;  // in-order bytes not yet framed
    Kind kind = Kind::unknown;
    TimePoint last_seen;
  };

  void append(Stream& s, std::string_view bytes);
  void fill_from_ahead(Stream& s);
  void frame(Stream& s, const Segment& completing, ReadStats& stats, const Emit& emit);
  static std::size_t held(const Stream& s) { return s.buffer.size() + s.ahead_bytes; }
  void evict_oldest(ReadStats& stats);

  Limits limits_;
  std::unordered_map<std::string, Stream> streams_;
  std::size_t held_ = 0;  // sum of held() over streams_
};

}  // namespace sw::capture
