#include "auth/mac.hpp"

#include <gtest/gtest.h>

#include <string>

namespace sw::auth {
namespace {

std::string hex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 0xf];
  }
  return out;
}

TEST(Mac, HmacSha256MatchesRfc4231TestCase2) {
  EXPECT_EQ(hex(hmac_sha256("Jefe", {"what do ya want ", "for nothing?"})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Mac, HmacPartsAreConcatenated) {
  EXPECT_EQ(hmac_sha256("k", {"ab", "c"}), hmac_sha256("k", {"a", "bc"}));
  EXPECT_NE(hmac_sha256("k", {"abc"}), hmac_sha256("K", {"abc"}));
  EXPECT_EQ(hmac_sha256("", {"x"}).size(), 32u);
}

// The thread's HMAC context keeps its key between calls: a call with the same
// key restarts from it, any other key is set anew. Known answers (RFC 4231
// cases 1 and 2) must hold whichever key the call before used.
TEST(Mac, HmacKeptKeyNeverLeaksIntoAnotherKeysResult) {
  const std::string case1_key(20, '\x0b');
  const std::string case1 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
  const std::string case2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(round);
    EXPECT_EQ(hex(hmac_sha256(case1_key, {"Hi There"})), case1);
    EXPECT_EQ(hex(hmac_sha256(case1_key, {"Hi ", "There"})), case1);  // same key again
    EXPECT_EQ(hex(hmac_sha256("Jefe", {"what do ya want for nothing?"})), case2);
    EXPECT_EQ(hex(hmac_sha256("Jefe", {"what do ya want for nothing?"})), case2);
  }
  // A key that is a prefix of the kept one, the empty key, and back.
  const auto longer = hmac_sha256("Jefe2", {"m"});
  EXPECT_NE(hmac_sha256("Jefe", {"m"}), longer);
  const auto empty_key = hmac_sha256("", {"m"});
  EXPECT_NE(empty_key, hmac_sha256("Jefe", {"m"}));
  EXPECT_EQ(hmac_sha256("", {"m"}), empty_key);
  EXPECT_EQ(hmac_sha256("Jefe2", {"m"}), longer);
}

TEST(Mac, Base64UrlRoundTripsEveryLength) {
  std::string bytes;
  for (int n = 0; n < 40; ++n) {
    auto text = base64url_encode(bytes);
    EXPECT_EQ(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
              std::string::npos);
    EXPECT_EQ(text.size(), (bytes.size() * 4 + 2) / 3);
    auto back = base64url_decode(text);
    ASSERT_TRUE(back.has_value()) << text;
    EXPECT_EQ(*back, bytes);
    bytes.push_back(static_cast<char>(n * 37 + 200));
  }
}

TEST(Mac, Base64UrlKnownValues) {
  EXPECT_EQ(base64url_encode("\xfb\xff"), "-_8");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url_decode("Zm9vYg").value_or("?"), "foob");
}

TEST(Mac, Base64UrlRejectsWhatNoEncoderWrites) {
  EXPECT_FALSE(base64url_decode("Zm9v+mFy"));  // standard alphabet
  EXPECT_FALSE(base64url_decode("Zm9vYg=="));  // padding
  EXPECT_FALSE(base64url_decode("Zm9vY"));     // a length of 1 mod 4
  EXPECT_FALSE(base64url_decode("Zh"));        // spare bits set: a second spelling of "f"
  EXPECT_TRUE(base64url_decode(""));
}

}  // namespace
}  // namespace sw::auth
