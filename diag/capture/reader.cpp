#include "reader.hpp"

#include <pcap/pcap.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>

#include "diag/capture/packet.hpp"
#include "diag/capture/sniff.hpp"
#include "diag/capture/tcp_stream.hpp"
#include "diag/capture/text_trace.hpp"

namespace sw::capture {
namespace {

constexpr std::size_t kSniffBytes = 4096;
constexpr std::uint64_t kProgressEveryPackets = 4096;

std::uint32_t le32(std::string_view b) {
  return static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[0])) |
         static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[1])) << 8 |
         static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[2])) << 16 |
         static_cast<std::uint32_t>(static_cast<std::uint8_t>(b[3])) << 24;
}

std::optional<LinkType> link_type_of(int dlt) {
  switch (dlt) {
    case DLT_EN10MB: return LinkType::ethernet;
    case DLT_LINUX_SLL: return LinkType::linux_sll;
    case DLT_LINUX_SLL2: return LinkType::linux_sll2;
    case DLT_RAW: return LinkType::raw_ip;
    case DLT_IPV4: return LinkType::ipv4;
    case DLT_IPV6: return LinkType::ipv6;
    case DLT_NULL: return LinkType::bsd_null;
    case DLT_LOOP: return LinkType::bsd_loop;
    default: return std::nullopt;
  }
}

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

// The payload of one UDP datagram: SIP, a keep-alive, TLS (DTLS), or something else.
void take_datagram(const Segment& seg, std::uint64_t offset, TimePoint time, ReadStats& stats,
                   const MessageSink& sink) {
  auto payload = seg.payload;
  if (payload.find_first_not_of("\r\n") == std::string_view::npos) return;  // keep-alive or empty
  if (starts_like_tls(payload)) {
    ++stats.tls_packets;
    return;
  }
  if (!starts_with_sip_start_line(payload)) {
    ++stats.non_sip;
    return;
  }
  ++stats.sip_messages;
  sink(CapturedMessage{time, "udp", seg.src.to_string(), seg.dst.to_string(), payload, offset, 0});
}

ReadOutcome read_pcap(const std::string& path, FileFormat format, const MessageSink& sink,
                      const ProgressSink& progress) {
  ReadOutcome outcome;
  auto& stats = outcome.stats;
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  std::unique_ptr<pcap_t, decltype(&pcap_close)> handle(
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf), &pcap_close);
  if (!handle) {
    outcome.error = ReadError{path, 0, errbuf};
    return outcome;
  }
  std::FILE* file = pcap_file(handle.get());
  auto link = link_type_of(pcap_datalink(handle.get()));
  if (!link) {
    const char* name = pcap_datalink_val_to_name(pcap_datalink(handle.get()));
    outcome.error = ReadError{path, static_cast<std::uint64_t>(std::ftell(file)),
                              std::string("link type ") + (name ? name : std::to_string(pcap_datalink(handle.get()))) +
                                  " is not supported (Ethernet, Linux cooked, raw IP and loopback are)"};
    return outcome;
  }
  auto total = file_size(path);
  PacketDecoder decoder;
  TcpReassembler tcp;
  // Classic pcap records are laid end to end after a 24-byte header, so the
  // offset is arithmetic; pcapng blocks vary, so ask the stream (one lseek each).
  constexpr std::uint64_t kPcapHeader = 24, kPcapRecordHeader = 16;
  const bool classic = format == FileFormat::pcap;
  std::uint64_t offset = kPcapHeader;
  TimePoint last_time{};
  auto emit_tcp = [&](std::string_view message, const Segment& seg, TimePoint time) {
    sink(CapturedMessage{time, "tcp", seg.src.to_string(), seg.dst.to_string(), message, offset, 0});
  };
  while (true) {
    if (!classic) offset = static_cast<std::uint64_t>(std::ftell(file));
    pcap_pkthdr* header = nullptr;
    const u_char* data = nullptr;
    int rc = pcap_next_ex(handle.get(), &header, &data);
    if (rc == PCAP_ERROR_BREAK) break;  // end of file
    if (rc != 1) {
      outcome.error = ReadError{path, offset, pcap_geterr(handle.get())};
      break;
    }
    ++stats.packets;
    TimePoint time{std::chrono::duration_cast<TimePoint::duration>(std::chrono::seconds(header->ts.tv_sec) +
                                                                    std::chrono::nanoseconds(header->ts.tv_usec))};
    last_time = time;
    Segment seg;
    std::string_view frame(reinterpret_cast<const char*>(data), header->caplen);
    switch (decoder.decode(*link, frame, time, seg, stats)) {
      case Decoded::segment:
        if (seg.tcp)
          tcp.add(seg, stats, [&](std::string_view m, const Segment& s) { emit_tcp(m, s, time); });
        else
          take_datagram(seg, offset, time, stats, sink);
        break;
      case Decoded::fragment_held: break;
      case Decoded::unsupported: ++stats.unsupported; break;
      case Decoded::malformed: ++stats.malformed; break;
    }
    // A record longer than the file's snap length was cut by libpcap, which
    // skipped the rest on disk: only the stream knows where the next one starts.
    if (classic) offset = header->caplen < header->len ? static_cast<std::uint64_t>(std::ftell(file))
                                                       : offset + kPcapRecordHeader + header->caplen;
    if (progress && stats.packets % kProgressEveryPackets == 0) progress(static_cast<std::uint64_t>(std::ftell(file)), total);
  }
  decoder.finish(stats);
  tcp.finish(stats, [&](std::string_view m, const Segment& s) { emit_tcp(m, s, last_time); });
  stats.bytes = outcome.error ? offset : total;
  if (progress) progress(stats.bytes, total);
  return outcome;
}

ReadOutcome read_text(const std::string& path, const MessageSink& sink, const ProgressSink& progress) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ReadOutcome{{}, ReadError{path, 0, std::strerror(errno)}};
  auto outcome = read_text_trace(in, path, sink, progress, file_size(path));
  if (!outcome.error && outcome.stats.sip_messages == 0)
    outcome.error = ReadError{path, 0, "no SIP message found in " + std::to_string(outcome.stats.bytes) +
                                           " bytes of text (not a SIP trace?)"};
  return outcome;
}

}  // namespace

std::string_view to_string(FileFormat f) {
  switch (f) {
    case FileFormat::pcap: return "pcap";
    case FileFormat::pcapng: return "pcapng";
    case FileFormat::text: return "text";
    case FileFormat::unknown: return "unknown";
  }
  return "unknown";
}

FileFormat detect_format(std::string_view first) {
  if (first.size() >= 4) {
    auto magic = le32(first);
    if (magic == 0xa1b2c3d4 || magic == 0xd4c3b2a1 || magic == 0xa1b23c4d || magic == 0x4d3cb2a1)
      return FileFormat::pcap;
    if (magic == 0x0a0d0d0a) return FileFormat::pcapng;
  }
  // Text: no NUL and hardly any control bytes (UTF-8 passes).
  std::size_t control = 0;
  for (char c : first) {
    auto u = static_cast<unsigned char>(c);
    if (u == 0) return FileFormat::unknown;
    if (u < 0x20 && c != '\r' && c != '\n' && c != '\t') ++control;
  }
  return control * 100 > first.size() ? FileFormat::unknown : FileFormat::text;
}

ReadOutcome read_capture_file(const std::string& path, const MessageSink& sink, const ProgressSink& progress,
                              FileFormat& format) {
  format = FileFormat::unknown;
  std::string first(kSniffBytes, '\0');
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) return ReadOutcome{{}, ReadError{path, 0, std::string("cannot open: ") + std::strerror(errno)}};
    in.read(first.data(), static_cast<std::streamsize>(first.size()));
    first.resize(static_cast<std::size_t>(in.gcount()));
  }
  format = detect_format(first);
  switch (format) {
    case FileFormat::pcap:
    case FileFormat::pcapng: return read_pcap(path, format, sink, progress);
    case FileFormat::text: return read_text(path, sink, progress);
    case FileFormat::unknown: break;
  }
  char magic[16];
  std::snprintf(magic, sizeof magic, "0x%08x", first.size() >= 4 ? le32(first) : 0u);
  return ReadOutcome{{}, ReadError{path, 0, std::string("not a pcap, pcapng or text SIP trace (first bytes ") + magic + ")"}};
}

}  // namespace sw::capture
