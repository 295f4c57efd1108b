#pragma once
// What every capture reader (pcap/pcapng, plain-text traces) hands to the
// analyzer: one SIP message at a time, with the capture's own time and
// addresses. Readers stream: a message's bytes are valid only during the call,
// so memory stays bounded whatever the file size.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "proxy/sip/message.hpp"

namespace sw::capture {

using TimePoint = std::chrono::system_clock::time_point;

// Big enough for any SIP message a capture holds (a reassembled datagram, a
// framed TCP message): one bound for the readers' framing and the analyzer's parse.
inline constexpr sip::ParseLimits kCaptureLimits{
    .max_message_bytes = 1 << 20, .max_headers = 1024, .max_line_bytes = 65535};

struct CapturedMessage {
  std::optional<TimePoint> time;  // text traces may carry none
  std::string_view transport;     // "udp", "tcp", or "" when the trace does not say
  std::string src, dst;           // "ip:port" ("[v6]:port"), "" when unknown
  std::string_view bytes;         // exactly one SIP message
  std::uint64_t offset = 0;       // pcap: file offset of the packet that completed it; text: byte offset
  std::uint64_t line = 0;         // text traces: line of the start line (1-based); 0 for pcap
};
using MessageSink = std::function<void(const CapturedMessage&)>;
// Bytes consumed so far and the file's size, for a progress display.
using ProgressSink = std::function<void(std::uint64_t done, std::uint64_t total)>;

// What a reader saw besides SIP, so a report can say what it could not read.
struct ReadStats {
  std::uint64_t bytes = 0;          // file bytes consumed
  std::uint64_t packets = 0;        // pcap records (text: 0)
  std::uint64_t sip_messages = 0;   // handed to the sink
  std::uint64_t udp_datagrams = 0;
  std::uint64_t tcp_segments = 0;
  std::uint64_t ip_fragments = 0;            // fragments seen
  std::uint64_t reassembled_datagrams = 0;   // datagrams rebuilt from fragments
  std::uint64_t incomplete_fragments = 0;    // datagrams whose fragments never all arrived
  std::uint64_t tcp_retransmissions = 0;     // segments wholly already seen
  std::uint64_t tcp_out_of_order = 0;        // segments buffered until the gap filled
  std::uint64_t tcp_gaps = 0;                // streams where bytes were missing (the rest resynchronised)
  std::uint64_t tcp_incomplete = 0;          // streams that ended (FIN, RST, end of file) inside a message
  std::uint64_t tls_packets = 0;             // TLS records: encrypted, counted, not read
  std::uint64_t non_sip = 0;                 // UDP/TCP payloads that are not SIP
  std::uint64_t unsupported = 0;             // link types or protocols not decoded (ARP, ICMP, ...)
  std::uint64_t malformed = 0;               // packets too short for their headers
  std::uint64_t unreadable_text = 0;         // text traces: blocks that looked like SIP and did not frame
};

// A problem that stopped reading a file: a wrong magic, a truncated record, an
// I/O error. What was read before it still counts.
struct ReadError {
  std::string file;
  std::uint64_t offset = 0;
  std::string message;
  std::string describe() const { return file + ": offset " + std::to_string(offset) + ": " + message; }
};

struct ReadOutcome {
  ReadStats stats;
  std::optional<ReadError> error;
};

}  // namespace sw::capture
