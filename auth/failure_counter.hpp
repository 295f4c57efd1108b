#pragma once
// Authentication failures counted per key (a source address, a username), with
// a block and exponential back-off once a key reaches its limit. Pure (time
// injected) and bounded: at most `capacity` keys, O(1) per call.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "auth/lru_map.hpp"

namespace sw::auth {

struct FailureLimits {
  std::uint32_t max_failures = 5;             // within window: block
  std::chrono::seconds window{60};
  std::chrono::seconds block_time{60};        // the first block; each next one doubles...
  std::chrono::seconds max_block_time{3600};  // ...up to this
  std::chrono::seconds backoff_reset{3600};   // quiet this long after a block ends: back to block_time
  std::size_t capacity = 65536;
};

class FailureCounter {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  explicit FailureCounter(FailureLimits limits) : limits_(limits) {
    limits_.capacity = std::max<std::size_t>(limits_.capacity, 1);
  }

  // How much longer key is blocked (zero: not blocked).
  std::chrono::seconds blocked_for(std::string_view key, TimePoint now);

  struct Result {
    std::uint32_t failures = 0;      // in the current window, this one included
    std::chrono::seconds block{0};   // non-zero: this failure started a block this long
  };
  Result fail(std::string_view key, TimePoint now);

  // Drops every key whose failures, block and back-off are all over (a scan).
  void purge(TimePoint now);

  std::size_t size() const { return plain_.size() + marked_.size(); }
  std::uint64_t evicted() const { return evicted_; }

 private:
  struct Entry {
    std::uint32_t failures = 0;
    TimePoint window_start{};
    TimePoint blocked_until{};
    std::chrono::seconds next_block{0};  // marked keys: the back-off's next block
  };
  bool forgotten(const Entry& e, TimePoint now) const;
  void make_room(TimePoint now);

  FailureLimits limits_;
  // Keys that never were blocked (or whose back-off was reset), and keys
  // blocked or remembered for back-off: under a flood of new keys the plain
  // ones make room first, so a blocked attacker is not freed by it.
  LruMap<Entry> plain_, marked_;
  std::uint64_t evicted_ = 0;
};

}  // namespace sw::auth
