#include "challenger.hpp"

#include <algorithm>
#include <charconv>
#include <optional>

#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"

namespace sw::auth {
namespace {

constexpr auto kTransactionLifetime = std::chrono::seconds(32);  // 64*T1: retransmissions stop by then
constexpr std::size_t kMaxRemembered = 65536;
constexpr std::size_t kMaxSources = 65536;

// One client transaction from one address: a retransmission matches it, another
// request reusing a branch someone saw does not.
std::string transaction_key(const sip::Message& m, std::string_view source) {
  const auto* via = &m.via;
  if (via->branch.empty()) return {};
  std::string key(via->branch);
  for (auto part : {via->sent_by, m.method, m.value(sip::HeaderId::CallId), m.value(sip::HeaderId::CSeq), source}) {
    key += '\x1f';
    key += part;
  }
  return key;
}

// nc is exactly 8 hex digits (RFC 7616 3.4); parse_credentials checked the form.
std::optional<std::uint32_t> parse_nc(std::string_view nc) {
  std::uint32_t value = 0;
  auto [end, ec] = std::from_chars(nc.data(), nc.data() + nc.size(), value, 16);
  if (nc.size() != 8 || ec != std::errc{} || end != nc.data() + nc.size()) return std::nullopt;
  return value;
}

}  // namespace

Challenger::Challenger(ChallengerSettings settings, std::string secret, std::shared_ptr<const CredentialStore> store)
    : settings_(std::move(settings)),
      nonces_(secret, settings_.nonce_ttl),
      opaque_(hash_hex(Algorithm::md5, "opaque:" + secret).substr(0, 16)),
      store_(std::move(store)) {}

const sip::Header* Challenger::our_credentials(const sip::Message& request, Credentials* out) const {
  for (const auto& h : request.headers) {
    if (h.id != sip::HeaderId::ProxyAuthorization) continue;
    auto creds = parse_credentials(h.value);
    if (creds && unquote(creds->realm) == settings_.realm) {
      *out = *creds;
      return &h;
    }
  }
  return nullptr;
}

Challenger::Decision Challenger::challenge(std::string_view nonce, bool stale, const char* reason) const {
  Decision d;
  d.kind = Decision::Kind::challenge;
  d.stale = stale;
  d.reason = reason;
  for (auto a : settings_.algorithms) {
    Challenge c;
    c.realm = settings_.realm;
    c.nonce = std::string(nonce);
    c.opaque = opaque_;
    c.algorithm = a;
    c.algorithm_given = true;
    c.qops = {Qop::auth};
    c.stale = stale;
    d.headers += "Proxy-Authenticate: " + format_challenge(c) + "\r\n";
  }
  return d;
}

Challenger::Decision Challenger::fail(const char* reason, std::string user, std::string_view source,
                                      std::string_view nonce, TimePoint now) {
  ++stats_.failures;
  if (sources_.size() >= kMaxSources && !sources_.count(std::string(source))) {
    // A scan of every source: at most once a second, however many failures a flood brings.
    if (now - sources_purged_ >= std::chrono::seconds(1)) purge(now);
    if (sources_.size() >= kMaxSources) {
      // Still full of live entries: this source is not tracked (counted, not blocked).
      ++stats_.challenges;
      auto d = challenge(nonce, false, reason);
      d.user = std::move(user);
      return d;
    }
  }
  auto& s = sources_[std::string(source)];
  if (now - s.window_start > settings_.failure_window) {
    s.failures = 0;
    s.window_start = now;
  }
  ++s.failures;
  if (s.failures >= settings_.max_failures) {
    s.blocked_until = now + settings_.block_time;
    ++stats_.blocks;
    ++stats_.forbidden;
    Decision d;
    d.kind = Decision::Kind::forbid;
    d.reason = reason;
    d.user = std::move(user);
    d.failures = s.failures;
    d.newly_blocked = true;
    return d;
  }
  ++stats_.challenges;
  auto d = challenge(nonce, false, reason);
  d.user = std::move(user);
  d.failures = s.failures;
  return d;
}

Challenger::Decision Challenger::check(const sip::Message& r, std::string_view source, TimePoint now) {
  Decision pass;
  // RFC 3261 22.1: ACK and CANCEL cannot be challenged; in-dialog requests
  // were authorised with the dialog.
  if (r.method == "ACK" || r.method == "CANCEL") return pass;
  if (std::find(settings_.methods.begin(), settings_.methods.end(), r.method) == settings_.methods.end()) return pass;
  if (!r.to_tag.empty()) return pass;

  auto key = transaction_key(r, source);
  if (auto it = recent_.find(key); it != recent_.end() && now - it->second.at < kTransactionLifetime) {
    Decision d;
    d.kind = it->second.kind;
    d.stale = it->second.stale;
    d.headers = it->second.headers;
    d.reason = it->second.reason;
    d.user = it->second.user;
    Credentials creds;
    if (d.kind == Decision::Kind::accept) d.ours = our_credentials(r, &creds);
    // An accept is replayed only for the very credentials that were verified.
    if (d.kind != Decision::Kind::accept || (d.ours && d.ours->value == it->second.credentials)) return d;
  }

  auto decide = [&]() -> Decision {
    if (auto it = sources_.find(std::string(source)); it != sources_.end() && it->second.blocked_until > now) {
      ++stats_.forbidden;
      Decision d;
      d.kind = Decision::Kind::forbid;
      d.reason = "source blocked after repeated authentication failures";
      d.failures = it->second.failures;
      return d;
    }
    auto fresh = nonces_.issue(settings_.realm, now, source);
    Credentials creds;
    const auto* ours = our_credentials(r, &creds);
    if (!ours) {
      ++stats_.challenges;
      return challenge(fresh, false, "no credentials for our realm");
    }
    auto algorithm = creds.algorithm.value_or(Algorithm::md5);
    if (std::find(settings_.algorithms.begin(), settings_.algorithms.end(), algorithm) == settings_.algorithms.end()) {
      ++stats_.challenges;
      return challenge(fresh, false, "algorithm not offered");
    }
    // We offer qop=auth: an answer without it would skip the replay check.
    if (creds.qop == Qop::none) {
      ++stats_.challenges;
      return challenge(fresh, false, "qop required");
    }
    auto nonce = unquote(creds.nonce);
    // Nonces are bound to the client's address: one fetched elsewhere (or
    // replayed from a spoofed source) is stale here, never a counted failure.
    auto checked = nonces_.verify(nonce, settings_.realm, now, source);
    if (checked.status != NonceIssuer::Status::valid) {
      ++stats_.challenges;
      // A nonce we cannot verify is most likely from before a restart: stale,
      // so the client retries with the same password instead of giving up.
      return challenge(fresh, true,
                       checked.status == NonceIssuer::Status::expired ? "nonce expired" : "nonce not issued by this instance");
    }
    std::string user = unquote(creds.username);
    if (creds.userhash) {
      auto found = store_ ? store_->user_for_hash(user, settings_.realm, algorithm) : std::nullopt;
      if (!found) return fail("unknown user (userhash)", user, source, fresh, now);
      user = *found;
    }
    auto ha1 = store_ ? store_->ha1(user, settings_.realm, algorithm) : std::nullopt;
    if (!ha1) return fail("unknown user", user, source, fresh, now);
    auto uri = unquote(creds.uri);
    auto cnonce = unquote(creds.cnonce);
    DigestInput in{algorithm, *ha1, nonce, cnonce, creds.nc, creds.qop, r.method, uri, r.body};
    if (!equal_constant_time(compute_response(in), unquote(creds.response)))
      return fail("wrong password", user, source, fresh, now);
    // The count is consumed only by a verified answer, so a forged answer
    // cannot use up the real phone's nonce count.
    if (creds.qop != Qop::none) {
      auto nc = parse_nc(creds.nc);
      if (!nc || !counts_.accept(nonce, *nc)) {
        ++stats_.challenges;
        return challenge(fresh, true, "nonce count reused (replay)");
      }
    }
    sources_.erase(std::string(source));
    ++stats_.accepted;
    Decision d;
    d.kind = Decision::Kind::accept;
    d.ours = ours;
    d.user = std::move(user);
    d.reason = "credentials valid";
    return d;
  };
  auto d = decide();
  if (!key.empty()) remember(key, d, now);
  return d;
}

void Challenger::forget(TimePoint now, bool make_room) {
  while (!recent_order_.empty() && (now - recent_order_.front().second >= kTransactionLifetime ||
                                    (make_room && recent_.size() >= kMaxRemembered))) {
    auto it = recent_.find(recent_order_.front().first);
    // A key decided again later has a newer entry in the queue: keep its decision.
    if (it != recent_.end() && it->second.at == recent_order_.front().second) recent_.erase(it);
    recent_order_.pop_front();
  }
}

void Challenger::remember(const std::string& key, const Decision& d, TimePoint now) {
  // Expired first, then the oldest while full: a flood costs each request
  // O(1) and the newest transactions (the ones still retransmitting) stay.
  forget(now, true);
  recent_[key] = Remembered{d.kind, d.stale, d.headers, d.reason, d.user,
                            d.ours ? std::string(d.ours->value) : std::string(), now};
  recent_order_.emplace_back(key, now);
}

void Challenger::purge(TimePoint now) {
  forget(now, false);
  sources_purged_ = now;
  std::erase_if(sources_, [&](const auto& kv) {
    return kv.second.blocked_until <= now && now - kv.second.window_start > settings_.failure_window;
  });
}

}  // namespace sw::auth
