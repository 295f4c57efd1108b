// libFuzzer target: any bytes as a capture file (pcap, pcapng, text trace or
// garbage), read through the same path as `sipwitness analyze`: format
// detection, libpcap, link layers, IP fragments, TCP reassembly, text traces,
// the analyzer, and all three reports. Must never crash or hang, whatever the file.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

#include "diag/capture/analysis.hpp"
#include "diag/capture/reader.hpp"
#include "diag/capture/report.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sw;
  // A file in memory: the readers open paths, as analyze gives them.
  int fd = memfd_create("capture", MFD_CLOEXEC);
  if (fd < 0) return 0;
  if (size && ::write(fd, data, size) != static_cast<ssize_t>(size)) {
    ::close(fd);
    return 0;
  }
  std::string path = "/proc/self/fd/" + std::to_string(fd);

  capture::AnalyzeSettings settings;
  settings.keep_ladders = true;
  settings.max_ladder_calls = 16;
  settings.tracker.flow_timeout = std::chrono::seconds(2);
  std::ostringstream out;
  capture::Analyzer analyzer(settings, [&](const diag::Verdict& v) {
    out << capture::format_text_verdict(v) << diag::to_json_line(v);
  });
  capture::FileFormat format{};
  auto outcome = capture::read_capture_file(
      path, [&](const capture::CapturedMessage& m) { analyzer.feed(m, path); }, {}, format);
  ::close(fd);
  analyzer.finish();
  std::vector<capture::InputSummary> inputs{{path, std::string(capture::to_string(format)), outcome}};
  out << capture::format_text_summary(inputs, analyzer.stats());
  capture::write_html(out, inputs, analyzer.stats(), analyzer.ladders());
  return 0;
}
