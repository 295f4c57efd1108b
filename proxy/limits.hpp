#pragma once
// Protective limits that depend on who sends what (requests per second and
// connections per source address), and the report of every limit hit: counted
// each time, logged once per interval, never once per packet. Pure: time is
// passed in, nothing here logs or touches a socket.
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/metrics.hpp"

namespace sw::proxy {

using LimitClock = std::chrono::steady_clock;

// When to log a limit's hits (they are counted in Counters::limits): the
// first of an interval at once, the rest summed up by summary() at its end.
class LimitReport {
 public:
  explicit LimitReport(std::chrono::seconds interval = std::chrono::seconds(10)) : interval_(interval) {}
  // A hit; true when this one should be logged now.
  bool hit(Limit limit, LimitClock::time_point now);
  // Lines for the hits not yet logged, once their interval has passed:
  // "limit: limits.max_requests_per_source hit 812 more times in the last 10s".
  std::vector<std::string> summary(LimitClock::time_point now);

 private:
  struct State {
    std::uint64_t unreported = 0;  // hits since the one that was logged
    LimitClock::time_point logged{};
    bool ever = false;
  };
  std::chrono::seconds interval_;
  std::array<State, kLimitNames.size()> state_{};
};

// Requests per second per source IP, as a token bucket (a burst up to one
// second's worth), and open connections per source IP. The table of sources
// is bounded: idle sources are forgotten first, and beyond the bound a new
// source is let through rather than remembered.
class SourceLimits {
 public:
  struct Settings {
    std::uint32_t requests_per_second = 0;  // 0 = no limit
    std::uint32_t connections = 0;          // 0 = no limit
    std::size_t max_sources = 65536;
  };
  explicit SourceLimits(Settings s) : settings_(s) {}
  // One request from ip: false when it is over its rate.
  bool allow_request(std::string_view ip, LimitClock::time_point now);
  // A connection from ip is opened: refused when it has too many; uncounted
  // when there is no limit or no room to remember the address (then its
  // close must not be counted either).
  enum class Admission { refused, counted, uncounted };
  Admission open_connection(std::string_view ip, LimitClock::time_point now);
  void close_connection(std::string_view ip);
  std::size_t tracked() const { return sources_.size(); }

 private:
  struct Source {
    double tokens = 0;
    LimitClock::time_point refilled{};
    std::uint32_t connections = 0;
  };
  Source* find_or_add(std::string_view ip, LimitClock::time_point now);
  void forget_idle(LimitClock::time_point now);

  Settings settings_;
  std::unordered_map<std::string, Source> sources_;
  LimitClock::time_point swept_{};
};

}  // namespace sw::proxy
