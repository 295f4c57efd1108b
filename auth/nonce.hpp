#pragma once
// Stateless nonces: HMAC-SHA256 over issue time (plus a sequence number, so
// each nonce is unique), realm and (optionally) the client's source address,
// with a secret. Nothing is stored per nonce, so a
// nonce from before a restart (another secret) is reported as unknown, and the
// challenger treats it as stale rather than as a wrong password.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <list>

namespace sw::auth {

class NonceIssuer {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  // secret: any length, 32 random bytes recommended.
  NonceIssuer(std::string secret, std::chrono::seconds ttl);

  std::string issue(std::string_view realm, TimePoint now, std::string_view source = {});

  enum class Status : std::uint8_t { valid, expired, unknown };
  struct Check {
    Status status;
    std::chrono::seconds age{0};  // valid and expired only
  };
  // unknown: malformed, forged, another realm or source, or another secret.
  Check verify(std::string_view nonce, std::string_view realm, TimePoint now, std::string_view source = {}) const;

  std::chrono::seconds ttl() const { return ttl_; }

 private:
  std::string mac(std::uint64_t issued, std::string_view realm, std::string_view source) const;
  static constexpr unsigned kSequenceBits = 20;  // a million unique nonces per second
  std::string secret_;
  std::chrono::seconds ttl_;
  std::uint64_t sequence_ = 0;
};

// Nonce-count replay check (RFC 7616 3.4): per nonce, each nc may be used once
// within a sliding window of the highest seen. Bounded: the least recently used
// nonce is forgotten past max_nonces (its next use counts as a fresh start).
class NonceCounter {
 public:
  explicit NonceCounter(std::size_t max_nonces = 65536, std::uint32_t window = 64);
  // false when this nc was already used for this nonce, or is below the window.
  bool accept(std::string_view nonce, std::uint32_t nc);
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::uint32_t highest = 0;
    std::uint64_t seen = 0;  // bit i: highest - i was used
    std::list<std::string>::iterator lru;
  };
  std::size_t max_;
  std::uint32_t window_;
  std::list<std::string> lru_;  // most recent at front
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace sw::auth
