#pragma once
// diag.capture: every message the proxy receives or sends, written to a pcap
// file as the IP packets a capture on sipwitness's host would show, between
// the peer's address and sipwitness's own socket. UDP messages are datagrams;
// TCP messages are segments numbered per connection and direction, so
// Wireshark follows the stream and `sipwitness analyze` reassembles it.
#include <spdlog/logger.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "diag/capture/packet_builder.hpp"
#include "diag/capture/pcap_writer.hpp"
#include "diag/observer.hpp"

namespace sw::proxy {

class CaptureWriter : public diag::Observer {
 public:
  // Largest TCP payload per segment: a message longer than this (up to 64 KiB
  // of SIP plus our edits) is split, so every packet fits the snap length.
  static constexpr std::size_t kMaxSegment = 64000;
  // TCP connections whose numbering is kept; past it the least recently used half is forgotten.
  static constexpr std::size_t kMaxStreams = 16384;

  // Opens the file; ok() false (error() says why) when it cannot.
  CaptureWriter(const std::string& path, std::shared_ptr<spdlog::logger> log);
  bool ok() const { return out_.ok(); }
  const std::string& error() const { return out_.error(); }

  void on_message(const diag::Observed& e) override;
  bool wants_self() const override { return true; }
  // Called once a second: what is buffered reaches the file. The file is
  // complete once the writer is destroyed.
  void flush();

 private:
  // Next sequence number of each direction of one TCP connection.
  struct Stream {
    std::uint32_t from_self = 0, from_peer = 0;
    std::uint64_t used = 0;  // use counter when last written, for eviction
  };
  // The connection's numbering; `fresh` when it was not known (new, or forgotten).
  Stream& stream(const std::string& key, capture::TimePoint time, bool& fresh);
  void skip(const diag::Observed& e, const char* why);

  capture::PcapWriter out_;
  std::shared_ptr<spdlog::logger> log_;
  std::unordered_map<std::string, Stream> streams_;  // "self|peer"
  std::uint64_t uses_ = 0;
  std::uint16_t ip_id_ = 0;
  bool failed_ = false;  // a write error: logged once, nothing more written
  bool skip_logged_ = false;
};

}  // namespace sw::proxy
