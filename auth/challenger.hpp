#pragma once
// sipwitness's own 407 policy (pure; time injected): which requests are
// challenged, whether their Proxy-Authorization for our realm is valid, and the
// brute-force guard (failures per source, then 403 and a temporary block).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <deque>
#include <unordered_map>
#include <vector>

#include "auth/credentials.hpp"
#include "auth/digest.hpp"
#include "auth/nonce.hpp"
#include "proxy/sip/message.hpp"

namespace sw::auth {

struct ChallengerSettings {
  std::string realm;
  std::vector<Algorithm> algorithms;  // offered in this order (RFC 8760: preferred first)
  std::vector<std::string> methods;
  std::chrono::seconds nonce_ttl{300};
  std::uint32_t max_failures = 5;
  std::chrono::seconds failure_window{60};
  std::chrono::seconds block_time{60};
};

class Challenger {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  Challenger(ChallengerSettings settings, std::string secret, std::shared_ptr<const CredentialStore> store);
  // Swaps the users (SIGHUP reload); flows in progress keep working.
  void set_store(std::shared_ptr<const CredentialStore> store) { store_ = std::move(store); }

  struct Decision {
    enum class Kind : std::uint8_t { pass, accept, challenge, forbid } kind = Kind::pass;
    bool stale = false;
    std::string headers;                // 407: "Proxy-Authenticate: ...\r\n" lines, one per algorithm
    const sip::Header* ours = nullptr;  // accept: our Proxy-Authorization, removed before forwarding
    std::string user;                   // who answered, when known (for the log)
    const char* reason = "";            // why, for the log line and the Warning header
    std::uint32_t failures = 0;         // failures counted for the source so far
    bool newly_blocked = false;         // this request started a block
  };
  // source: the client's IP address, the key of the failure counter.
  Decision check(const sip::Message& request, std::string_view source, TimePoint now);

  // Forgets expired blocks, failure windows and remembered decisions.
  void purge(TimePoint now);

  struct Stats {
    std::uint64_t challenges = 0, accepted = 0, failures = 0, forbidden = 0, blocks = 0;
  };
  const Stats& stats() const { return stats_; }
  std::size_t tracked_sources() const { return sources_.size(); }

 private:
  Decision challenge(std::string_view nonce, bool stale, const char* reason) const;
  Decision fail(const char* reason, std::string user, std::string_view source, std::string_view nonce, TimePoint now);
  const sip::Header* our_credentials(const sip::Message& request, Credentials* out) const;

  ChallengerSettings settings_;
  NonceIssuer nonces_;
  NonceCounter counts_;
  std::string opaque_;
  std::shared_ptr<const CredentialStore> store_;
  struct Source {
    std::uint32_t failures = 0;
    TimePoint window_start{};
    TimePoint blocked_until{};
  };
  std::unordered_map<std::string, Source> sources_;
  TimePoint sources_purged_{};
  // The decision for each client transaction (top Via branch), so a
  // retransmission gets the same 407 (same nonce) and is not counted twice.
  struct Remembered {
    Decision::Kind kind;
    bool stale;
    std::string headers;
    const char* reason;
    std::string user;
    std::string credentials;  // accept: the Proxy-Authorization value that was verified
    TimePoint at;
  };
  std::unordered_map<std::string, Remembered> recent_;
  // recent_'s keys in the order they were decided: expired and, when full,
  // the oldest decisions are dropped from the front, never by a scan.
  std::deque<std::pair<std::string, TimePoint>> recent_order_;
  void remember(const std::string& key, const Decision& d, TimePoint now);
  // Drops remembered decisions from the oldest: expired ones, and with
  // make_room any until one more fits.
  void forget(TimePoint now, bool make_room);
  Stats stats_;
};

}  // namespace sw::auth
