#pragma once
// sipwitness's own 407 policy (pure; time injected): which requests are
// challenged, whether their Proxy-Authorization for our realm is valid, and the
// brute-force guard (failures per source and per username, then 403 and a
// block that doubles while the failures go on).
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
#include "auth/failure_counter.hpp"
#include "auth/nonce.hpp"
#include "proxy/sip/message.hpp"

namespace sw::auth {

struct ChallengerSettings {
  std::string realm;
  std::vector<Algorithm> algorithms;  // offered in this order (RFC 8760: preferred first)
  std::vector<std::string> methods;
  std::chrono::seconds nonce_ttl{300};
  std::uint32_t max_failures = 5;        // per source address
  std::uint32_t max_user_failures = 20;  // per username, from any source
  std::chrono::seconds failure_window{60};
  std::chrono::seconds block_time{60};
  std::chrono::seconds max_block_time{3600};
  std::chrono::seconds backoff_reset{3600};
  // A source that authenticated as a user is not held by that user's block this long.
  std::chrono::seconds trusted_for{86400};
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
    std::uint32_t user_failures = 0;    // ...and for the username
    // Non-zero: this request started a block of the source / the username this long.
    std::chrono::seconds source_block{0}, user_block{0};
  };
  // source: the client's IP address, the key of the source failure counter.
  Decision check(const sip::Message& request, std::string_view source, TimePoint now);

  // Forgets expired blocks, failure windows, trust and remembered decisions.
  void purge(TimePoint now);

  struct Stats {
    std::uint64_t challenges = 0, accepted = 0, failures = 0, forbidden = 0, source_blocks = 0, user_blocks = 0;
  };
  const Stats& stats() const { return stats_; }
  std::size_t tracked_sources() const { return sources_.size(); }
  std::size_t tracked_users() const { return users_.size(); }

 private:
  Decision challenge(std::string_view nonce, bool stale, const char* reason) const;
  // known_user: the username is in the store, so it has its own counter.
  Decision fail(const char* reason, std::string user, bool known_user, std::string_view source,
                std::string_view nonce, TimePoint now);
  bool trusted(std::string_view user, std::string_view source, TimePoint now);
  const sip::Header* our_credentials(const sip::Message& request, Credentials* out) const;

  ChallengerSettings settings_;
  NonceIssuer nonces_;
  NonceCounter counts_;
  std::string opaque_;
  std::shared_ptr<const CredentialStore> store_;
  FailureCounter sources_, users_;
  // "user\x1fsource" -> the last success: who may pass that user's block.
  LruMap<TimePoint> trusted_;
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
