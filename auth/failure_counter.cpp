#include "failure_counter.hpp"

#include <algorithm>

namespace sw::auth {

std::chrono::seconds FailureCounter::blocked_for(std::string_view key, TimePoint now) {
  // A blocked key that keeps knocking stays the most recent, last to be evicted.
  const auto* e = marked_.use(key);
  if (!e || e->blocked_until <= now) return std::chrono::seconds(0);
  return std::chrono::ceil<std::chrono::seconds>(e->blocked_until - now);
}

bool FailureCounter::forgotten(const Entry& e, TimePoint now) const {
  auto until = e.window_start + limits_.window;
  if (e.next_block.count()) until = std::max(until, e.blocked_until + limits_.backoff_reset);
  return until <= now;
}

void FailureCounter::make_room(TimePoint now) {
  // Expired first, then the least recently failed, plain keys before marked ones.
  for (auto* table : {&plain_, &marked_}) {
    if (!table->empty() && forgotten(table->oldest().value, now)) {
      table->drop_oldest();
      return;
    }
  }
  (plain_.empty() ? marked_ : plain_).drop_oldest();
  ++evicted_;
}

FailureCounter::Result FailureCounter::fail(std::string_view key, TimePoint now) {
  auto* e = marked_.use(key);
  // Failures while blocked (a username's block does not stop its trusted
  // sources) do not count towards the next block.
  if (e && e->blocked_until > now) return Result{e->failures};
  if (e && now >= e->blocked_until + limits_.backoff_reset) {
    // Quiet long enough since its last block: the back-off starts over.
    Entry plain = *e;
    plain.next_block = std::chrono::seconds(0);
    marked_.erase(key);
    e = &plain_.add(key, plain);
  }
  if (!e) e = plain_.use(key);
  if (!e) {
    if (size() >= limits_.capacity) make_room(now);
    e = &plain_.add(key, Entry{});
  }
  if (now - e->window_start > limits_.window) {
    e->failures = 0;
    e->window_start = now;
  }
  Result r{++e->failures};
  if (e->failures < limits_.max_failures) return r;
  r.block = e->next_block.count() ? e->next_block : std::min(limits_.block_time, limits_.max_block_time);
  Entry blocked{0, now, now + r.block, std::min(r.block * 2, limits_.max_block_time)};
  // The count starts again after the block: the next block needs as many failures.
  plain_.erase(key);
  marked_.erase(key);
  marked_.add(key, blocked);
  return r;
}

void FailureCounter::purge(TimePoint now) {
  auto over = [&](const Entry& e) { return forgotten(e, now); };
  plain_.erase_if(over);
  marked_.erase_if(over);
}

}  // namespace sw::auth
