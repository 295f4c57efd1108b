#include "limits.hpp"

#include <algorithm>

namespace sw::proxy {

bool LimitReport::hit(Limit limit, LimitClock::time_point now) {
  auto& s = state_[static_cast<std::size_t>(limit)];
  if (s.ever && now - s.logged < interval_) {
    ++s.unreported;
    return false;
  }
  s.ever = true;
  s.logged = now;
  return true;
}

std::vector<std::string> LimitReport::summary(LimitClock::time_point now) {
  std::vector<std::string> lines;
  for (std::size_t i = 0; i < state_.size(); ++i) {
    auto& s = state_[i];
    if (s.unreported == 0 || now - s.logged < interval_) continue;
    lines.push_back("limit: " + std::string(kLimitNames[i]) + " hit " +
                    std::to_string(s.unreported) + " more time" + (s.unreported == 1 ? "" : "s") + " in the last " +
                    std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - s.logged).count()) + "s");
    s.unreported = 0;
    s.logged = now;
  }
  return lines;
}

SourceLimits::Source* SourceLimits::find_or_add(std::string_view ip, LimitClock::time_point now) {
  std::string key(ip);
  if (auto it = sources_.find(key); it != sources_.end()) return &it->second;
  if (sources_.size() >= settings_.max_sources) forget_idle(now);
  if (sources_.size() >= settings_.max_sources) return nullptr;
  auto& s = sources_[key];
  s.tokens = settings_.requests_per_second;
  s.refilled = now;
  return &s;
}

void SourceLimits::forget_idle(LimitClock::time_point now) {
  // At most one sweep a second, so a flood of new addresses costs no scan per packet.
  if (now - swept_ < std::chrono::seconds(1)) return;
  swept_ = now;
  const double full = settings_.requests_per_second;
  std::erase_if(sources_, [&](const auto& kv) {
    const auto& s = kv.second;
    if (s.connections) return false;
    // Idle: its bucket would be full again by now, so forgetting it changes nothing.
    auto idle = std::chrono::duration<double>(now - s.refilled).count();
    return s.tokens + idle * full >= full || full == 0;
  });
}

bool SourceLimits::allow_request(std::string_view ip, LimitClock::time_point now) {
  if (settings_.requests_per_second == 0) return true;
  auto* s = find_or_add(ip, now);
  if (!s) return true;  // the table is full of busy sources: never refuse on a guess
  const double rate = settings_.requests_per_second;
  auto elapsed = std::chrono::duration<double>(now - s->refilled).count();
  s->tokens = std::min(rate, s->tokens + elapsed * rate);
  s->refilled = now;
  if (s->tokens < 1) return false;
  s->tokens -= 1;
  return true;
}

SourceLimits::Admission SourceLimits::open_connection(std::string_view ip, LimitClock::time_point now) {
  if (settings_.connections == 0) return Admission::uncounted;
  auto* s = find_or_add(ip, now);
  if (!s) return Admission::uncounted;
  if (s->connections >= settings_.connections) return Admission::refused;
  ++s->connections;
  return Admission::counted;
}

void SourceLimits::close_connection(std::string_view ip) {
  if (settings_.connections == 0) return;
  auto it = sources_.find(std::string(ip));
  if (it != sources_.end() && it->second.connections) --it->second.connections;
}

}  // namespace sw::proxy
