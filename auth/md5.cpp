#include "md5.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace sw::auth {
namespace {

std::uint32_t rotl(std::uint32_t x, int c) { return (x << c) | (x >> (32 - c)); }

// RFC 1321 3.4: T[i] = floor(2^32 * |sin(i + 1)|), exact in double precision.
const std::array<std::uint32_t, 64>& sine_table() {
  static const auto table = [] {
    std::array<std::uint32_t, 64> t{};
    for (std::size_t i = 0; i < t.size(); ++i)
      t[i] = static_cast<std::uint32_t>(std::floor(std::fabs(std::sin(static_cast<double>(i) + 1.0)) * 4294967296.0));
    return t;
  }();
  return table;
}

std::uint32_t load_le32(const unsigned char* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24;
}

}  // namespace

void Md5::update(std::string_view data) {
  auto p = reinterpret_cast<const unsigned char*>(data.data());
  std::size_t n = data.size();
  total_ += n;
  if (pending_size_ > 0) {
    const std::size_t take = std::min(n, pending_.size() - pending_size_);
    std::memcpy(pending_.data() + pending_size_, p, take);
    pending_size_ += take;
    p += take;
    n -= take;
    if (pending_size_ < pending_.size()) return;
    block(pending_.data());
    pending_size_ = 0;
  }
  for (; n >= 64; p += 64, n -= 64) block(p);
  std::memcpy(pending_.data(), p, n);
  pending_size_ = n;
}

std::array<unsigned char, Md5::kDigestBytes> Md5::finish() {
  // RFC 1321 3.1-3.2: a 1 bit, zeros to 56 bytes mod 64, the bit length (little-endian).
  const std::uint64_t bits = total_ * 8;
  pending_[pending_size_++] = 0x80;
  if (pending_size_ > 56) {
    std::fill(pending_.begin() + static_cast<std::ptrdiff_t>(pending_size_), pending_.end(), 0);
    block(pending_.data());
    pending_size_ = 0;
  }
  std::fill(pending_.begin() + static_cast<std::ptrdiff_t>(pending_size_), pending_.begin() + 56, 0);
  for (std::size_t i = 0; i < 8; ++i) pending_[56 + i] = static_cast<unsigned char>(bits >> (8 * i));
  block(pending_.data());
  std::array<unsigned char, kDigestBytes> out{};
  for (std::size_t w = 0; w < 4; ++w)
    for (std::size_t i = 0; i < 4; ++i) out[4 * w + i] = static_cast<unsigned char>(state_[w] >> (8 * i));
  return out;
}

void Md5::block(const unsigned char* p) {
  std::array<std::uint32_t, 16> m{};
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = load_le32(p + 4 * i);
  const auto& t = sine_table();
  std::uint32_t a = state_[0], b = state_[1], c = state_[2], d = state_[3];
  auto step = [&](std::uint32_t f, std::size_t i, std::size_t g, int s) {
    f += a + t[i] + m[g];
    a = d;
    d = c;
    c = b;
    b += rotl(f, s);
  };
  // RFC 1321 3.4, one loop per round so each unrolls with its function fixed.
  static constexpr int kShift[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};
#pragma GCC unroll 16
  for (std::size_t i = 0; i < 16; ++i) step(d ^ (b & (c ^ d)), i, i, kShift[0][i % 4]);
#pragma GCC unroll 16
  for (std::size_t i = 16; i < 32; ++i) step(c ^ (d & (b ^ c)), i, (5 * i + 1) % 16, kShift[1][i % 4]);
#pragma GCC unroll 16
  for (std::size_t i = 32; i < 48; ++i) step(b ^ c ^ d, i, (3 * i + 5) % 16, kShift[2][i % 4]);
#pragma GCC unroll 16
  for (std::size_t i = 48; i < 64; ++i) step(c ^ (b | ~d), i, (7 * i) % 16, kShift[3][i % 4]);
  state_[0] += a;
  state_[1] += b;
  state_[2] += c;
  state_[3] += d;
}

}  // namespace sw::auth
