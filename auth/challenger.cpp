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
// Sources, usernames and (user, source) trusts each: a flood of new keys costs
// the least recently seen ones, never memory.
constexpr std::size_t kMaxTracked = 65536;

FailureLimits limits(const ChallengerSettings& s, std::uint32_t max_failures) {
  return {max_failures, s.failure_window, s.block_time, s.max_block_time, s.backoff_reset, kMaxTracked};
}

// Source addresses hold no \x1f, so the last one splits the key unambiguously.
std::string trust_key(std::string_view user, std::string_view source) {
  std::string key(user);
  key += '\x1f';
  key += source;
  return key;
}

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
      store_(std::move(store)),
      sources_(limits(settings_, settings_.max_failures)),
      users_(limits(settings_, settings_.max_user_failures)) {}

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

Challenger::Decision Challenger::fail(const char* reason, std::string user, bool known_user, std::string_view source,
                                      std::string_view nonce, TimePoint now) {
  ++stats_.failures;
  auto by_source = sources_.fail(source, now);
  // Unknown names count against the source only: a counter per made-up name
  // guards no account, and a flood of them would crowd out the real ones.
  auto by_user = known_user ? users_.fail(user, now) : FailureCounter::Result{};
  Decision d;
  if (by_source.block.count() || by_user.block.count()) {
    ++stats_.forbidden;
    stats_.source_blocks += by_source.block.count() != 0;
    stats_.user_blocks += by_user.block.count() != 0;
    d.kind = Decision::Kind::forbid;
    d.reason = reason;
  } else {
    ++stats_.challenges;
    d = challenge(nonce, false, reason);
  }
  d.user = std::move(user);
  d.failures = by_source.failures;
  d.user_failures = by_user.failures;
  d.source_block = by_source.block;
  d.user_block = by_user.block;
  return d;
}

bool Challenger::trusted(std::string_view user, std::string_view source, TimePoint now) {
  const auto* last = trusted_.find(trust_key(user, source));
  return last && now - *last < settings_.trusted_for;
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
    auto forbid = [&](const char* reason) {
      ++stats_.forbidden;
      Decision d;
      d.kind = Decision::Kind::forbid;
      d.reason = reason;
      return d;
    };
    if (sources_.blocked_for(source, now).count()) return forbid("source blocked after repeated authentication failures");
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
      if (!found) return fail("unknown user (userhash)", user, false, source, fresh, now);
      user = *found;
    }
    auto ha1 = store_ ? store_->ha1(user, settings_.realm, algorithm) : std::nullopt;
    if (!ha1) return fail("unknown user", user, false, source, fresh, now);
    // Before the password is checked, so a blocked user's password cannot be
    // guessed either; the sources it authenticated from recently still pass.
    if (users_.blocked_for(user, now).count() && !trusted(user, source, now)) {
      auto d = forbid("user blocked after repeated authentication failures");
      d.user = std::move(user);
      return d;
    }
    auto uri = unquote(creds.uri);
    auto cnonce = unquote(creds.cnonce);
    DigestInput in{algorithm, *ha1, nonce, cnonce, creds.nc, creds.qop, r.method, uri, r.body};
    if (!equal_constant_time(compute_response(in), unquote(creds.response)))
      return fail("wrong password", user, true, source, fresh, now);
    // The count is consumed only by a verified answer, so a forged answer
    // cannot use up the real phone's nonce count.
    if (creds.qop != Qop::none) {
      auto nc = parse_nc(creds.nc);
      if (!nc || !counts_.accept(nonce, *nc)) {
        ++stats_.challenges;
        return challenge(fresh, true, "nonce count reused (replay)");
      }
    }
    // The source's failures stay counted: a valid account must not buy fresh guesses.
    auto trust = trust_key(user, source);
    if (auto* last = trusted_.use(trust)) {
      *last = now;
    } else {
      // Least recently used = least recently trusted: the oldest trust expires first.
      if (trusted_.size() >= kMaxTracked) trusted_.drop_oldest();
      trusted_.add(trust, now);
    }
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
  sources_.purge(now);
  users_.purge(now);
  trusted_.erase_if([&](TimePoint last) { return now - last >= settings_.trusted_for; });
}

}  // namespace sw::auth
