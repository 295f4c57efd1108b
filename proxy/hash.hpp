#pragma once
// FNV-1a over fields, for branch and tag values that must be a stable function
// of the message (not a security boundary: nothing here authenticates).
#include <cstdint>
#include <cstdio>
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
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h_));
    return buf;
  }

 private:
  void mix(unsigned char c) {
    h_ ^= c;
    h_ *= 1099511628211ULL;
  }
  std::uint64_t h_ = 14695981039346656037ULL;
};

}  // namespace sw::proxy
