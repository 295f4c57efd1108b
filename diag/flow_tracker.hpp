#pragma once
// Follows every digest exchange per flow (Call-ID + method + From tag: a
// REGISTER and its authenticated retries, an INVITE and its retry) and emits one
// Verdict when the flow ends: on its final response, or after flow_timeout of
// silence following a challenge (the client gave up). Pure: time comes with the
// events and with tick(); memory is bounded by max_flows.
#include <array>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <unordered_map>
#include <list>
#include <optional>
#include <span>
#include <vector>

#include "auth/credentials.hpp"
#include "auth/digest.hpp"
#include "diag/observer.hpp"
#include "diag/seal.hpp"
#include "diag/verdict.hpp"

namespace sw::diag {

struct TrackerSettings {
  std::chrono::seconds flow_timeout{32};
  std::size_t max_flows = 100000;
  bool redact = true;  // digests shortened in evidence (never passwords or HA1s anyway)
  // Passwords the diagnosis may use to be certain (diag.known_credentials, or the
  // users of sipwitness's own challenges); may be null.
  std::shared_ptr<const auth::CredentialStore> known;
  int loop_challenges = 6;  // this many challenges without success ends the flow as a loop or a cause
};

class FlowTracker : public Observer {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  using Sink = std::function<void(const Verdict&)>;

  FlowTracker(TrackerSettings settings, Sink sink);
  void set_known(std::shared_ptr<const auth::CredentialStore> known) { settings_.known = std::move(known); }

  void on_message(const Observed& event) override;
  bool wants_relayed_copies() const override { return false; }
  // Ends flows silent for flow_timeout after a challenge (no_credentials, or the
  // cause found in their last answer) and flows without any final response for
  // twice that (unanswered).
  void tick(TimePoint now);
  // Ends every open flow (shutdown, end of a capture) as tick would at `now`.
  void finish(TimePoint now);

  std::size_t live_flows() const { return flows_.size(); }
  std::uint64_t evictions() const { return evictions_; }
  std::uint64_t verdicts() const { return verdicts_; }

  // Compact for the same reason as Answer: realm, nonce and opaque share one
  // buffer, the offered algorithms and qops are held inline.
  struct ChallengeSeen {
    // realm, nonce and opaque of the first challenge in the response.
    void set_first(std::string_view realm, std::string_view nonce, std::string_view opaque);
    std::string_view realm() const { return std::string_view(text).substr(0, realm_end); }
    std::string_view nonce() const { return std::string_view(text).substr(realm_end, nonce_end - realm_end); }
    std::string_view opaque() const { return std::string_view(text).substr(nonce_end); }
    // Offered, in order, each once.
    std::span<const auth::Algorithm> algorithms() const { return {offered.data(), offered_count}; }
    void offer(auth::Algorithm a);
    bool offers(auth::Qop q) const { return (qop_bits >> static_cast<unsigned>(q)) & 1u; }
    void offer(auth::Qop q) { qop_bits = static_cast<std::uint8_t>(qop_bits | (1u << static_cast<unsigned>(q))); }

    std::string text;
    std::uint32_t realm_end = 0, nonce_end = 0;
    std::vector<std::string> other_nonces;  // one per further challenge that has its own (RFC 8760)
    std::array<auth::Algorithm, 6> offered{};  // every algorithm there is, at most once each
    std::uint8_t offered_count = 0;
    std::uint8_t qop_bits = 0;
    bool stale = false;
    int status = 0;             // 401 or 407
    bool by_sipwitness = false; // our own 407
    TimePoint at;
    std::uint64_t order = 0;    // position among the flow's events
  };
  // An answer's text fields, unquoted, live in one buffer: a flow waiting for
  // its final response is most of what the tracker holds (memory per live
  // flow is measured by bench/bench_diag).
  struct Answer {
    enum Field : std::uint8_t {
      kUsername, kRealm, kNonce, kUri, kResponse, kCnonce, kNc, kOpaque, kAlgorithmText,
      kRequestUri, kMethod,
      kBody,  // kept for qop=auth-int only, the one digest that covers it
      kFieldCount
    };
    // Fills every field, in Field order.
    void set_fields(std::initializer_list<std::string_view> values);
    std::string_view field(Field f) const {
      auto begin = f == 0 ? 0 : ends[f - 1];
      return std::string_view(text).substr(begin, ends[f] - begin);
    }
    std::string_view username() const { return field(kUsername); }
    std::string_view realm() const { return field(kRealm); }
    std::string_view nonce() const { return field(kNonce); }
    std::string_view uri() const { return field(kUri); }
    std::string_view response() const { return field(kResponse); }
    std::string_view cnonce() const { return field(kCnonce); }
    std::string_view nc() const { return field(kNc); }
    std::string_view opaque() const { return field(kOpaque); }
    std::string_view algorithm_text() const { return field(kAlgorithmText); }
    std::string_view request_uri() const { return field(kRequestUri); }
    std::string_view method() const { return field(kMethod); }
    std::string_view body() const { return field(kBody); }

    std::string text;
    std::array<std::uint32_t, kFieldCount> ends{};
    std::optional<auth::Algorithm> algorithm;
    auth::Qop qop = auth::Qop::none;
    bool proxy = false;  // Proxy-Authorization (answers a 407) vs Authorization (a 401)
    std::uint32_t cseq = 0;
    TimePoint at;
    std::uint64_t order = 0;
  };
  struct Flow {
    std::string call_id, method, aor, aor_user, from_user, source;
    std::vector<ChallengeSeen> challenges;
    std::vector<Answer> answers;
    std::uint32_t last_cseq = 0;
    bool awaiting_answer = false;  // the last event was a challenge
    std::uint64_t events = 0;
    // Lab mode: digest fields a device rewrote between two sipwitness instances.
    std::vector<FieldChange> rewrites;
    // Without seals: signs in the phone's requests that an ALG rewrote them (to_text of AlgHint).
    std::vector<std::string> alg_hints;
    TimePoint last_activity;
    std::list<const std::string*>::iterator lru;  // its entry in lru_
  };

  // The verdict for a flow ending now with this final status: a final response's
  // code, the last challenge's (401/407) when the client gave up or looped, or
  // 0 when nothing answered. The flow is used up: its texts move into the
  // verdict rather than being copied, once per flow.
  Verdict analyze(Flow&& flow, int final_status, TimePoint now) const;

 private:
  void on_request(const Observed& e);
  void on_response(const Observed& e);
  static void note_rewrites(Flow& flow, const Observed& e);
  Verdict analyze_digest(Flow& flow, int final_status, TimePoint now) const;
  void end(const std::string& key, int final_status, TimePoint now);
  Flow* find(const std::string& key);

  TrackerSettings settings_;
  Sink sink_;
  std::unordered_map<std::string, Flow> flows_;
  std::list<const std::string*> lru_;  // keys of flows_ (stable node keys), most recently active first
  std::uint64_t evictions_ = 0;
  std::uint64_t verdicts_ = 0;
};

}  // namespace sw::diag
