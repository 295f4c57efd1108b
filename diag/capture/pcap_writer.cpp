#include "pcap_writer.hpp"

#include <pcap/pcap.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace sw::capture {
namespace {

// Large enough that a busy proxy writes a few times a second, not per packet.
constexpr std::size_t kFileBuffer = 256 * 1024;

}  // namespace

PcapWriter::PcapWriter(const std::string& path) : path_(path) {
  // The FILE is ours so the error names errno and the buffer can be set before
  // libpcap writes the file header through it.
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (!file) {
    error_ = "cannot open " + path + ": " + std::strerror(errno);
    return;
  }
  buffer_ = std::make_unique<char[]>(kFileBuffer);
  std::setvbuf(file, buffer_.get(), _IOFBF, kFileBuffer);
  pcap_ = pcap_open_dead(DLT_RAW, static_cast<int>(kSnapLength));
  if (!pcap_) {
    std::fclose(file);
    error_ = "cannot open " + path + ": libpcap could not start a capture";
    return;
  }
  dumper_ = pcap_dump_fopen(pcap_, file);
  if (!dumper_) {
    error_ = "cannot open " + path + ": " + pcap_geterr(pcap_);
    std::fclose(file);
  }
}

PcapWriter::~PcapWriter() {
  if (dumper_) pcap_dump_close(dumper_);  // flushes and closes the FILE
  if (pcap_) pcap_close(pcap_);
}

void PcapWriter::write(TimePoint time, std::string_view packet) {
  if (!dumper_) return;
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
  pcap_pkthdr header{};
  header.ts.tv_sec = static_cast<decltype(header.ts.tv_sec)>(us / 1000000);
  header.ts.tv_usec = static_cast<decltype(header.ts.tv_usec)>(us % 1000000);
  header.caplen = static_cast<bpf_u_int32>(std::min(packet.size(), kSnapLength));
  header.len = static_cast<bpf_u_int32>(packet.size());
  pcap_dump(reinterpret_cast<u_char*>(dumper_), &header, reinterpret_cast<const u_char*>(packet.data()));
  ++records_;
}

bool PcapWriter::flush() {
  if (!dumper_) return false;
  if (pcap_dump_flush(dumper_) == 0 && !std::ferror(pcap_dump_file(dumper_))) return true;
  error_ = "cannot write " + path_ + ": " + std::strerror(errno);
  return false;
}

}  // namespace sw::capture
