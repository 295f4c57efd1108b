// libFuzzer target: the verdict engine fed with a sequence of messages (the
// input split at NUL bytes), alternating legs and directions, with time moving
// on; then every open flow is ended. Verdict rendering must always be one JSON line.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "diag/flow_tracker.hpp"
#include "proxy/sip/message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sw;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  diag::TrackerSettings settings;
  settings.flow_timeout = std::chrono::seconds(2);
  settings.max_flows = 8;
  std::size_t lines = 0;
  diag::FlowTracker tracker(settings, [&](const diag::Verdict& v) {
    auto line = diag::to_json_line(v);
    if (line.find('\n') != std::string::npos || !nlohmann::json::accept(line)) __builtin_trap();
    if (diag::to_human_line(v).find('\n') != std::string::npos) __builtin_trap();
    ++lines;
  });
  auto now = std::chrono::system_clock::time_point{} + std::chrono::hours(500000);
  std::size_t i = 0;
  while (!input.empty()) {
    auto end = input.find('\0');
    auto bytes = input.substr(0, end);
    input = end == std::string_view::npos ? std::string_view{} : input.substr(end + 1);
    if (auto m = sip::parse(bytes, sip::Framing::datagram)) {
      diag::Observed e{i % 3 == 2 ? diag::Direction::sent : diag::Direction::received,
                       i % 2 ? diag::Leg::upstream : diag::Leg::phone, now, "udp", "192.0.2.10:5060", *m, i % 3 == 2};
      tracker.on_message(e);
    }
    now += std::chrono::milliseconds(700);
    tracker.tick(now);
    ++i;
  }
  tracker.finish(now);
  (void)lines;
  return 0;
}
