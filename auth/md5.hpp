#pragma once
// MD5 (RFC 1321) for the digest verify path. OpenSSL 3 reaches MD5 only
// through EVP, whose provider dispatch costs more than hashing the short
// inputs of a digest response; other hashes still go through EVP.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sw::auth {

class Md5 {
 public:
  static constexpr std::size_t kDigestBytes = 16;

  void update(std::string_view data);
  std::array<unsigned char, kDigestBytes> finish();

 private:
  void block(const unsigned char* p);

  std::array<std::uint32_t, 4> state_{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
  std::uint64_t total_ = 0;  // bytes hashed so far
  std::array<unsigned char, 64> pending_{};
  std::size_t pending_size_ = 0;
};

}  // namespace sw::auth
