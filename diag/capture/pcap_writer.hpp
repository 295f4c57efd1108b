#pragma once
// Writes raw IP packets (LINKTYPE_RAW) to a pcap file through libpcap, so
// Wireshark, tcpdump and `sipwitness analyze` read it. Buffered: records reach
// the file on flush() and when the writer is destroyed, which leaves it complete.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "diag/capture/captured.hpp"

struct pcap;
struct pcap_dumper;

namespace sw::capture {

class PcapWriter {
 public:
  static constexpr std::size_t kSnapLength = 65535;  // the largest IPv4 packet

  // Creates (or truncates) path; on failure ok() is false and error() says why.
  explicit PcapWriter(const std::string& path);
  PcapWriter(const PcapWriter&) = delete;
  PcapWriter& operator=(const PcapWriter&) = delete;
  ~PcapWriter();

  bool ok() const { return dumper_ != nullptr; }
  const std::string& error() const { return error_; }

  // One record: an IPv4 or IPv6 packet seen at `time` (cut to kSnapLength,
  // with its real length kept in the record).
  void write(TimePoint time, std::string_view packet);
  // Hands the buffered records to the OS; false (error() says why) when the
  // file cannot be written.
  bool flush();
  std::uint64_t records() const { return records_; }

 private:
  std::string path_;
  std::string error_;
  pcap* pcap_ = nullptr;
  pcap_dumper* dumper_ = nullptr;
  std::unique_ptr<char[]> buffer_;  // the FILE's buffer: outlives it
  std::uint64_t records_ = 0;
};

}  // namespace sw::capture
