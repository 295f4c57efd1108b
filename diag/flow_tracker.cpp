#include "flow_tracker.hpp"

#include <algorithm>

#include "diag/alg_hints.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"

namespace sw::diag {
namespace {

using auth::Algorithm;
using auth::Qop;

constexpr auto kSlowAnswer = std::chrono::seconds(2);

std::string flow_key(const sip::Message& m) {
  auto call_id = m.value(sip::HeaderId::CallId);
  std::string key;
  key.reserve(call_id.size() + m.cseq_method.size() + m.from_tag.size() + 2);
  key += call_id;
  key += '\x1f';
  key += m.cseq_method;
  key += '\x1f';
  key += m.from_tag;
  return key;
}

double seconds(std::chrono::system_clock::duration d) {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) / 1000.0;
}

std::vector<std::string> algorithm_names(std::span<const Algorithm> algorithms) {
  std::vector<std::string> out;
  for (auto a : algorithms) out.emplace_back(auth::to_string(a));
  return out;
}

}  // namespace

FlowTracker::FlowTracker(TrackerSettings settings, Sink sink) : settings_(std::move(settings)), sink_(std::move(sink)) {}

FlowTracker::Flow* FlowTracker::find(const std::string& key) {
  auto it = flows_.find(key);
  return it == flows_.end() ? nullptr : &it->second;
}

void FlowTracker::on_message(const Observed& e) {
  if (e.seal && e.seal->probe) return;  // `sipwitness probe` traffic: the probe reports it, no phone's flow
  if (e.message.is_request) {
    if (e.direction == Direction::received) on_request(e);
    return;
  }
  // What sipwitness forwards is a copy of what it received; only its own
  // responses are new on the sending side.
  if (e.direction == Direction::received || e.local) on_response(e);
}

void FlowTracker::on_request(const Observed& e) {
  const auto& m = e.message;
  if (m.method == "ACK" || m.method == "CANCEL") return;
  if (!m.to_tag.empty()) return;  // in-dialog: authorised with the dialog
  auto key = flow_key(m);
  auto* flow = find(key);
  if (!flow) {
    if (flows_.size() >= settings_.max_flows && !lru_.empty()) {
      // Full: the least recently active flow is dropped without a verdict.
      flows_.erase(*lru_.back());
      lru_.pop_back();
      ++evictions_;
    }
    Flow f;
    f.call_id = std::string(m.value(sip::HeaderId::CallId));
    f.method = std::string(m.method);
    f.aor = std::string(m.to.uri_text);
    f.aor_user = std::string(m.to.uri.user);
    f.from_user = std::string(m.from.uri.user);
    f.source = std::string(e.peer);
    auto added = flows_.emplace(std::move(key), std::move(f)).first;
    lru_.push_front(&added->first);
    flow = &added->second;
    flow->lru = lru_.begin();
  } else {
    lru_.splice(lru_.begin(), lru_, flow->lru);
  }
  flow->last_activity = e.time;
  bool retransmission = !flow->answers.empty() && flow->answers.back().cseq == m.cseq_number &&
                        flow->last_cseq == m.cseq_number;
  flow->last_cseq = m.cseq_number;
  if (retransmission) return;
  note_rewrites(*flow, e);

  // The credentials answering this flow's challenges: the one for the realm of
  // the latest challenge (what the request answers), else one for any realm
  // challenged in the flow, else the first Digest credentials of either kind.
  std::optional<auth::Credentials> chosen;
  bool chosen_proxy = false;
  int chosen_rank = -1;
  std::optional<std::string_view> latest_realm;
  if (!flow->challenges.empty()) latest_realm = flow->challenges.back().realm();
  for (const auto& h : m.headers) {
    bool proxy = h.id == sip::HeaderId::ProxyAuthorization;
    if (!proxy && h.id != sip::HeaderId::Authorization) continue;
    auto creds = auth::parse_credentials(h.value);
    if (!creds) continue;
    auto realm = auth::unquote(creds->realm);
    int rank = 0;
    if (latest_realm && realm == *latest_realm) rank = 2;
    else if (std::any_of(flow->challenges.begin(), flow->challenges.end(),
                         [&](const ChallengeSeen& c) { return c.realm() == realm; }))
      rank = 1;
    if (rank > chosen_rank) {
      chosen = *creds;
      chosen_proxy = proxy;
      chosen_rank = rank;
    }
  }
  if (!chosen) return;
  Answer a;
  a.set_fields({auth::unquote(chosen->username), auth::unquote(chosen->realm), auth::unquote(chosen->nonce),
                auth::unquote(chosen->uri), auth::unquote(chosen->response), auth::unquote(chosen->cnonce),
                chosen->nc, auth::unquote(chosen->opaque), chosen->algorithm_text, m.request_uri, m.method,
                chosen->qop == Qop::auth_int ? m.body : std::string_view{}});
  a.algorithm = chosen->algorithm;
  a.qop = chosen->qop;
  a.proxy = chosen_proxy;
  a.cseq = m.cseq_number;
  a.at = e.time;
  a.order = ++flow->events;
  flow->awaiting_answer = false;
  // Only the latest answers matter to the analysis; a flood of new requests
  // without responses must not grow one flow without bound.
  constexpr std::size_t kMaxAnswers = 16;
  if (flow->answers.size() >= kMaxAnswers) flow->answers.erase(flow->answers.begin());
  flow->answers.push_back(std::move(a));
}

void FlowTracker::on_response(const Observed& e) {
  const auto& m = e.message;
  auto key = flow_key(m);
  auto* flow = find(key);
  if (!flow) return;
  lru_.splice(lru_.begin(), lru_, flow->lru);
  flow->last_activity = e.time;  // a 180 too: a call may ring for minutes
  note_rewrites(*flow, e);
  if (m.status < 200) return;
  if (m.status != 401 && m.status != 407) {
    end(key, m.status, e.time);
    return;
  }
  ChallengeSeen c;
  c.status = m.status;
  c.by_sipwitness = e.local;
  c.at = e.time;
  auto header = m.status == 401 ? sip::HeaderId::WwwAuthenticate : sip::HeaderId::ProxyAuthenticate;
  bool first = true;
  for (const auto& h : m.headers) {
    if (h.id != header) continue;
    auto parsed = auth::parse_challenges(h.value);
    if (!parsed) continue;
    for (const auto& ch : *parsed) {
      if (first) {
        c.set_first(ch.realm, ch.nonce, ch.opaque);
        for (auto q : ch.qops) c.offer(q);
        first = false;
      } else if (ch.nonce != c.nonce() &&
                 std::find(c.other_nonces.begin(), c.other_nonces.end(), ch.nonce) == c.other_nonces.end()) {
        c.other_nonces.push_back(ch.nonce);
      }
      c.stale = c.stale || ch.stale;
      c.offer(ch.algorithm);
    }
  }
  // A retransmitted challenge (same nonce, nothing answered since) is not a new one.
  if (flow->awaiting_answer && !flow->challenges.empty() && flow->challenges.back().nonce() == c.nonce() &&
      flow->challenges.back().status == c.status)
    return;
  c.order = ++flow->events;
  flow->challenges.push_back(std::move(c));
  flow->awaiting_answer = true;
  if (static_cast<int>(flow->challenges.size()) >= settings_.loop_challenges) end(key, m.status, e.time);
}

void FlowTracker::ChallengeSeen::set_first(std::string_view realm, std::string_view nonce, std::string_view opaque) {
  text.clear();
  text.reserve(realm.size() + nonce.size() + opaque.size());
  text.append(realm).append(nonce).append(opaque);
  realm_end = static_cast<std::uint32_t>(realm.size());
  nonce_end = static_cast<std::uint32_t>(realm.size() + nonce.size());
}

void FlowTracker::ChallengeSeen::offer(auth::Algorithm a) {
  auto known = algorithms();
  if (std::find(known.begin(), known.end(), a) == known.end() && offered_count < offered.size())
    offered[offered_count++] = a;
}

void FlowTracker::Answer::set_fields(std::initializer_list<std::string_view> values) {
  std::size_t total = 0;
  for (auto v : values) total += v.size();
  text.clear();
  text.reserve(total);
  std::size_t i = 0;
  for (auto v : values) {
    text += v;
    ends[i++] = static_cast<std::uint32_t>(text.size());
  }
}

void FlowTracker::note_rewrites(Flow& flow, const Observed& e) {
  if (!e.seal) {
    // Single-point hints only where the phone's own request arrives: a seal
    // (lab mode) proves what hints can only suggest.
    if (!e.message.is_request || e.leg != Leg::phone || e.local) return;
    constexpr std::size_t kMaxHints = 8;
    auto source = sip::parse_host_port(e.peer);
    std::string_view source_ip = source ? source->host : std::string_view{};
    for (const auto& hint : single_point_alg_hints(e.message, source_ip)) {
      auto text = to_text(hint);
      if (flow.alg_hints.size() < kMaxHints &&
          std::find(flow.alg_hints.begin(), flow.alg_hints.end(), text) == flow.alg_hints.end())
        flow.alg_hints.push_back(std::move(text));
    }
    return;
  }
  constexpr std::size_t kMaxRewrites = 32;
  for (const auto& change : e.seal->changes)
    if (is_auth_field(change.name) && flow.rewrites.size() < kMaxRewrites) flow.rewrites.push_back(change);
}

void FlowTracker::end(const std::string& key, int final_status, TimePoint now) {
  auto it = flows_.find(key);
  if (it == flows_.end()) return;
  auto node = flows_.extract(it);
  lru_.erase(node.mapped().lru);
  auto verdict = analyze(std::move(node.mapped()), final_status, now);
  ++verdicts_;
  sink_(verdict);
}

void FlowTracker::tick(TimePoint now) {
  std::vector<std::pair<std::string, int>> due;
  for (const auto& [key, flow] : flows_) {
    auto silent = now - flow.last_activity;
    if (flow.awaiting_answer && silent >= settings_.flow_timeout)
      due.emplace_back(key, flow.challenges.back().status);
    else if (!flow.awaiting_answer && silent >= 2 * settings_.flow_timeout)
      due.emplace_back(key, 0);
  }
  for (const auto& [key, status] : due) end(key, status, now);
}

void FlowTracker::finish(TimePoint now) {
  std::vector<std::pair<std::string, int>> all;
  for (const auto& [key, flow] : flows_) all.emplace_back(key, flow.awaiting_answer ? flow.challenges.back().status : 0);
  for (const auto& [key, status] : all) end(key, status, now);
}

Verdict FlowTracker::analyze(Flow&& f, int final_status, TimePoint now) const {
  auto v = analyze_digest(f, final_status, now);
  if (!f.alg_hints.empty() && v.verdict != VerdictKind::alg_rewrite) {
    v.evidence.emplace_back("alg_likely", true);
    v.evidence.emplace_back("alg_hints", std::move(f.alg_hints));
    v.hint += " A SIP ALG likely rewrote the phone's request on the way (see alg_hints): disable the router's "
              "SIP ALG and test again.";
  }
  return v;
}

Verdict FlowTracker::analyze_digest(Flow& f, int final_status, TimePoint now) const {
  Verdict v;
  v.ts = now;
  v.call_id = std::move(f.call_id);
  v.method = std::move(f.method);
  v.aor = std::move(f.aor);
  v.source = std::move(f.source);
  v.challenges = static_cast<int>(f.challenges.size());
  v.final_status = final_status;
  if (!f.answers.empty()) v.user = f.answers.back().username();
  auto& ev = v.evidence;
  // `return set(...)` moves v out; returning v by value here would copy it.
  auto set = [&](VerdictKind kind, Confidence confidence) -> Verdict&& {
    v.verdict = kind;
    v.confidence = confidence;
    v.hint = std::string(hint_for(kind));
    return std::move(v);
  };
  const ChallengeSeen* last_challenge = f.challenges.empty() ? nullptr : &f.challenges.back();
  if (last_challenge) ev.emplace_back("challenged_by", last_challenge->by_sipwitness ? "sipwitness" : "upstream");

  // A seal proves the device rewrote the digest exchange: that explains the
  // failure better than anything read from the rewritten values.
  if (!f.rewrites.empty()) {
    // The most telling change: one digest parameter rather than the whole header.
    auto parameter = std::find_if(f.rewrites.begin(), f.rewrites.end(),
                                  [](const FieldChange& r) { return r.label.ends_with('='); });
    const auto* shown = parameter != f.rewrites.end() ? &*parameter : &f.rewrites.front();
    ev.emplace_back("field", shown->label);
    ev.emplace_back("sent", shown->sent);
    ev.emplace_back("arrived", shown->arrived);
    std::vector<std::string> fields;
    for (const auto& r : f.rewrites)
      if (std::find(fields.begin(), fields.end(), r.label) == fields.end()) fields.push_back(r.label);
    ev.emplace_back("rewritten_fields", fields);
    set(VerdictKind::alg_rewrite, Confidence::certain);
    bool failed = final_status == 0 || final_status == 401 || final_status == 407 || final_status == 403;
    v.hint = "A device between the two sipwitness instances rewrote the " + shown->label +
             (failed ? " of the digest exchange: that, not the password, is why authentication fails. "
                     : " of the digest exchange; the server accepted it this time, a stricter one will not. ") +
             "Disable the router's SIP ALG (SIP helper, SIP transformations).";
    return v;
  }
  if (final_status == 403) return set(VerdictKind::forbidden, Confidence::certain);
  if (final_status != 0 && final_status != 401 && final_status != 407)
    return set(f.challenges.empty() ? VerdictKind::ok : VerdictKind::ok_after_challenge, Confidence::certain);
  if (final_status == 0 || !last_challenge) return set(VerdictKind::unanswered, Confidence::certain);
  if (f.answers.empty()) {
    ev.emplace_back("challenge_realm", std::string(last_challenge->realm()));
    ev.emplace_back("offered_algorithms", algorithm_names(last_challenge->algorithms()));
    return set(VerdictKind::no_credentials, Confidence::certain);
  }

  // The last answer against the challenge it answered and the one that followed.
  const Answer& a = f.answers.back();
  const ChallengeSeen* answered = nullptr;
  const ChallengeSeen* following = nullptr;
  const ChallengeSeen* issuer = nullptr;  // the challenge that issued the answered nonce
  for (const auto& c : f.challenges) {
    if (c.order < a.order) answered = &c;
    if (c.order > a.order && !following) following = &c;
    if (c.order < a.order && (c.nonce() == a.nonce() || std::find(c.other_nonces.begin(), c.other_nonces.end(),
                                                                 a.nonce()) != c.other_nonces.end()))
      issuer = &c;
  }
  if (!answered) answered = last_challenge;
  ev.emplace_back("challenge_realm", std::string(answered->realm()));
  ev.emplace_back("credential_realm", std::string(a.realm()));
  ev.emplace_back("credential_username", std::string(a.username()));
  ev.emplace_back("aor_user", f.aor_user);
  // Shortened by default: enough to match against a capture, never enough to replay.
  ev.emplace_back("credential_response", settings_.redact ? std::string(a.response().substr(0, 8)) + "..." : std::string(a.response()));
  ev.emplace_back("answer_delay_s", seconds(a.at - answered->at));

  if (a.realm() != answered->realm()) return set(VerdictKind::realm_mismatch, Confidence::certain);

  auto algorithm = a.algorithm.value_or(Algorithm::md5);
  auto offered = answered->algorithms();
  bool algorithm_offered =
      offered.empty() || std::find(offered.begin(), offered.end(), algorithm) != offered.end();
  // Without qop in the challenge the client must not use one (RFC 2069 form).
  bool qop_offered = a.qop == Qop::none ||
                     answered->offers(a.qop);
  if (!algorithm_offered || !qop_offered) {
    ev.emplace_back("offered_algorithms", algorithm_names(answered->algorithms()));
    ev.emplace_back("credential_algorithm", a.algorithm_text().empty() ? std::string("MD5") : std::string(a.algorithm_text()));
    if (!qop_offered) ev.emplace_back("credential_qop", std::string(auth::to_string(a.qop)));
    return set(VerdictKind::algorithm_unsupported, Confidence::certain);
  }

  bool stale = following && following->stale;
  if (stale || !issuer) {
    ev.emplace_back("stale", stale);
    if (issuer) ev.emplace_back("nonce_age_s", seconds(a.at - issuer->at));
    else ev.emplace_back("nonce_issued_in_flow", false);
    return set(VerdictKind::nonce_expired, stale ? Confidence::certain : Confidence::likely);
  }

  if (a.uri() != a.request_uri()) {
    ev.emplace_back("digest_uri", std::string(a.uri()));
    ev.emplace_back("request_uri", std::string(a.request_uri()));
    return set(VerdictKind::uri_mismatch, Confidence::likely);
  }

  // With the password known, recompute instead of guessing.
  if (settings_.known) {
    if (auto ha1 = settings_.known->ha1(a.username(), answered->realm(), algorithm)) {
      auth::DigestInput in{algorithm, *ha1, a.nonce(), a.cnonce(), a.nc(), a.qop, a.method(), a.uri(), a.body()};
      bool verified = auth::equal_constant_time(auth::compute_response(in), a.response());
      ev.emplace_back("response_verified", verified);
      // Right password, other -sess reading: the client hashed HA1's raw bytes
      // (an RFC 2617 reading) where the server expects RFC 7616's hex.
      if (!verified && auth::is_sess(algorithm) &&
          auth::equal_constant_time(auth::compute_response(in, auth::SessVariant::raw), a.response())) {
        ev.emplace_back("sess_variant", std::string("raw"));
        return set(VerdictKind::algorithm_unsupported, Confidence::certain);
      }
      if (!verified) return set(VerdictKind::wrong_password, Confidence::certain);
      // Right password, rejected anyway. A phone answers in milliseconds; a slow
      // answer most likely met a nonce that had expired (many servers re-challenge
      // without stale=true).
      if (a.at - answered->at >= kSlowAnswer) return set(VerdictKind::nonce_expired, Confidence::likely);
      ev.emplace_back("checked", std::vector<std::string>{"realm", "algorithm", "qop", "nonce", "uri", "password"});
      return set(VerdictKind::auth_loop, Confidence::likely);
    }
    // The store speaks for a realm it lists users of (and for our own realm).
    if (last_challenge->by_sipwitness || settings_.known->covers_realm(answered->realm()))
      return set(VerdictKind::username_mismatch, Confidence::certain);
  }
  if (a.username() != f.aor_user && a.username() != f.from_user)
    return set(VerdictKind::username_mismatch, Confidence::likely);
  return set(VerdictKind::wrong_password, Confidence::likely);
}

}  // namespace sw::diag
