#pragma once
// FNV-1a over fields, for branch and tag values that must be a stable function
// of the message (not a security boundary: nothing here authenticates).
#include <cstdint>
#include <string>
#include <string_view>

namespace sw::proxy {

class Fnv64 {
 public:
  Fnv64& add(std::string_view s) {
    for (unsigned char c : s) mix(c);
    mix(0xff);  // field separator, so ("ab","c") and ("a","bc") differ
    return *this;
  }
  Fnv64& add(std::uint64_t n) {
    for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(n >> (8 * i)));
    return *this;
  }
  std::string hex() const {
    std::string out;
    append_hex(out);
    return out;
  }
  // The 16 hex digits at the end of out: a branch is built in one string.
  void append_hex(std::string& out) const {
    // By hand: a branch is hashed per forwarded request, and snprintf costs more than the hash.
    static constexpr char kDigits[] = "0123456789abcdef";
    char digits[16];
    for (int i = 15, shift = 0; i >= 0; --i, shift += 4) digits[i] = kDigits[(h_ >> shift) & 0xf];
    out.append(digits, sizeof digits);
  }

 private:
  void mix(unsigned char c) {
    h_ ^= c;
    h_ *= 1099511628211ULL;
  }
  std::uint64_t h_ = 14695981039346656037ULL;
};

}  // namespace sw::proxy
