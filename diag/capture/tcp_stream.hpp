#pragma once
// TCP streams of a capture back in order (retransmitted and out-of-order
// segments, sequence wrap-around), then cut into SIP messages by Content-Length.
// A stream that opens with a TLS record is counted and skipped; one that is not
// SIP at all is counted as such. Memory is bounded per stream and in streams.
#include <functional>
#include <list>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "diag/capture/captured.hpp"
#include "diag/capture/packet.hpp"

namespace sw::capture {

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

  void add(const Segment& segment, ReadStats& stats, const Emit& emit);
  // End of the capture: holes that never filled are skipped and what lies past
  // them is framed; streams left inside a message are counted.
  void finish(ReadStats& stats, const Emit& emit);

 private:
  enum class Kind : std::uint8_t { unknown, sip, tls, other };
  struct Stream {
    IpEndpoint src, dst;
    bool started = false;
    bool closing = false;  // FIN or RST seen while a hole was still open
    std::uint32_t next_seq = 0;
    std::uint64_t next_offset = 0;  // in-order bytes so far: positions without wrap-around
    std::map<std::uint64_t, std::string> ahead;  // stream offset -> bytes past a hole
    std::size_t ahead_bytes = 0;
    std::string buffer;  // in-order bytes not yet framed
    Kind kind = Kind::unknown;
    std::list<std::string>::iterator lru;
  };

  void append(Stream& s, std::string_view bytes);
  void fill_from_ahead(Stream& s);
  void skip_hole(Stream& s, ReadStats& stats);
  void frame(Stream& s, const Segment& completing, ReadStats& stats, const Emit& emit);
  static std::size_t held(const Stream& s) { return s.buffer.size() + s.ahead_bytes; }
  void erase(std::unordered_map<std::string, Stream>::iterator it);
  void evict_oldest(ReadStats& stats);

  Limits limits_;
  std::unordered_map<std::string, Stream> streams_;
  std::list<std::string> lru_;  // stream keys, most recently active first
  std::size_t held_ = 0;        // sum of held() over streams_
};

}  // namespace sw::capture
