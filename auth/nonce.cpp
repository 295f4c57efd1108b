#include "nonce.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

#include "auth/mac.hpp"

namespace sw::auth {

namespace {

// Layout of the decoded nonce: issue time (seconds since the epoch, big-endian)
// then the truncated MAC. 24 bytes encode to exactly 32 base64url characters
// with no padding and no spare bits, so every nonce has one spelling only.
constexpr std::size_t kTimeBytes = 8;
constexpr std::size_t kMacBytes = 16;  // 128-bit truncated HMAC-SHA256 (RFC 2104 5: at least half)
constexpr std::size_t kRawBytes = kTimeBytes + kMacBytes;
constexpr std::size_t kNonceChars = kRawBytes / 3 * 4;
static_assert(kRawBytes % 3 == 0);

// A nonce up to this far in the future still counts: instances sharing a
// secret (lab mode, restarts on another host) may disagree on the clock a little.
constexpr std::int64_t kFutureSkewSeconds = 5;

void put_u64(std::uint64_t v, unsigned char* out) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(v);
    v >>= 8;
  }
}

std::uint64_t get_u64(const unsigned char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | in[i];
  return v;
}

void put_u32(std::uint32_t v, unsigned char* out) {
  for (int i = 3; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(v);
    v >>= 8;
  }
}

std::int64_t epoch_seconds(NonceIssuer::TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

}  // namespace

NonceIssuer::NonceIssuer(std::string secret, std::chrono::seconds ttl)
    : secret_(std::move(secret)), ttl_(ttl) {}

// HMAC-SHA256(secret, time || len(realm) || realm || source), truncated. The
// length prefix keeps ("ab", "c") and ("a", "bc") apart. Empty on failure,
// which verify() treats as a mismatch.
std::string NonceIssuer::mac(std::uint64_t issued, std::string_view realm,
                             std::string_view source) const {
  std::array<unsigned char, kTimeBytes + 4> head{};
  put_u64(issued, head.data());
  put_u32(static_cast<std::uint32_t>(realm.size()), head.data() + kTimeBytes);
  auto full = hmac_sha256(secret_, {std::string_view(reinterpret_cast<const char*>(head.data()), head.size()),
                                    realm, source});
  if (full.size() < kMacBytes) return {};
  full.resize(kMacBytes);
  return full;
}

std::string NonceIssuer::issue(std::string_view realm, TimePoint now,
                               std::string_view source) {
  // The time field carries seconds in its upper bits and a sequence number in
  // the low kSequenceBits, so every nonce is unique: two challenges in the same
  // second must not share a nonce (their nc=1 answers would look like replays).
  const auto issued = (static_cast<std::uint64_t>(epoch_seconds(now)) << kSequenceBits) |
                      (sequence_++ & ((std::uint64_t{1} << kSequenceBits) - 1));
  std::array<unsigned char, kRawBytes> raw{};
  put_u64(issued, raw.data());
  std::string tag = mac(issued, realm, source);
  // On an OpenSSL failure the MAC part stays zero: the nonce then never verifies.
  std::copy(tag.begin(), tag.end(), raw.begin() + kTimeBytes);
  return base64url_encode(std::string_view(reinterpret_cast<const char*>(raw.data()), raw.size()));
}

NonceIssuer::Check NonceIssuer::verify(std::string_view nonce, std::string_view realm,
                                       TimePoint now, std::string_view source) const {
  if (nonce.size() != kNonceChars) return {Status::unknown};
  auto decoded = base64url_decode(nonce);
  if (!decoded || decoded->size() != kRawBytes) return {Status::unknown};
  const auto* raw = reinterpret_cast<const unsigned char*>(decoded->data());
  const std::uint64_t issued = get_u64(raw);
  std::string expected = mac(issued, realm, source);
  if (expected.size() != kMacBytes ||
      CRYPTO_memcmp(expected.data(), raw + kTimeBytes, kMacBytes) != 0)
    return {Status::unknown};
  // Authentic from here on, so the time in it is ours.
  const std::int64_t age = epoch_seconds(now) - static_cast<std::int64_t>(issued >> kSequenceBits);
  if (age < -kFutureSkewSeconds) return {Status::unknown};
  const std::chrono::seconds age_s{std::max<std::int64_t>(age, 0)};
  if (age_s > ttl_) return {Status::expired, age_s};
  return {Status::valid, age_s};
}

NonceCounter::NonceCounter(std::size_t max_nonces, std::uint32_t window)
    : max_(std::max<std::size_t>(max_nonces, 1)),
      window_(std::clamp<std::uint32_t>(window, 1, 64)) {}

bool NonceCounter::accept(std::string_view nonce, std::uint32_t nc) {
  auto it = entries_.find(std::string(nonce));
  if (it == entries_.end()) {
    if (entries_.size() >= max_) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    lru_.emplace_front(nonce);
    entries_.emplace(lru_.front(), Entry{nc, 1, lru_.begin()});
    return true;
  }
  Entry& e = it->second;
  lru_.splice(lru_.begin(), lru_, e.lru);  // iterators stay valid
  if (nc > e.highest) {
    const std::uint32_t shift = nc - e.highest;
    e.seen = shift >= 64 ? 0 : e.seen << shift;
    e.seen |= 1;
    e.highest = nc;
    return true;
  }
  const std::uint32_t offset = e.highest - nc;
  if (offset >= window_) return false;  // too old to tell whether it was used
  const std::uint64_t bit = std::uint64_t{1} << offset;
  if ((e.seen & bit) != 0) return false;  // replay
  e.seen |= bit;
  return true;
}

}  // namespace sw::auth
