// Our MD5 (auth/md5.hpp): the RFC 1321 test suite through the digest code's
// hash_hex, then agreement with OpenSSL's over random inputs fed in random pieces.
#include "auth/md5.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <random>
#include <string>

#include "auth/digest.hpp"

namespace {

using sw::auth::Algorithm;
using sw::auth::Md5;

TEST(Md5, Rfc1321TestSuite) {
  const std::pair<std::string, std::string> rows[] = {
      {"", "d41d8cd98f00b204e9800998ecf8427e"},
      {"a", "0cc175b9c0f1b6a831c399e269772661"},
      {"abc", "900150983cd24fb0d6963f7d28e17f72"},
      {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
      {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
      {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"},
      {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
       "57edf4a22be3c955ac49da2e2107b67a"},
  };
  for (const auto& [input, digest] : rows)
    EXPECT_EQ(sw::auth::hash_hex(Algorithm::md5, input), digest) << "input: \"" << input << "\"";
}

TEST(Md5, AgreesWithOpenSslInAnyPieces) {
  EVP_MD* md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  ASSERT_NE(md, nullptr);
  std::mt19937 rng(20261122);
  // Lengths around every block and padding boundary (55/56/63/64 bytes), cut
  // into pieces that straddle them.
  for (int round = 0; round < 3000; ++round) {
    std::string input(rng() % 300, '\0');
    for (auto& c : input) c = static_cast<char>(rng());
    Md5 md5;
    for (std::size_t pos = 0; pos < input.size();) {
      const std::size_t piece = std::min<std::size_t>(rng() % 80, input.size() - pos);
      md5.update(std::string_view(input).substr(pos, piece));
      pos += piece;
    }
    std::array<unsigned char, Md5::kDigestBytes> expected{};
    unsigned int len = 0;
    ASSERT_EQ(EVP_Digest(input.data(), input.size(), expected.data(), &len, md, nullptr), 1);
    ASSERT_EQ(len, Md5::kDigestBytes);
    ASSERT_EQ(md5.finish(), expected) << "length " << input.size();
  }
  EVP_MD_free(md);
}

}  // namespace
