#include <gtest/gtest.h>

#include <cctype>
#include <iterator>
#include <string>

#include "auth/nonce.hpp"

namespace sw::auth {
namespace {

using namespace std::chrono_literals;
using TimePoint = NonceIssuer::TimePoint;

// A fixed, injected clock: no test here reads the real time or sleeps.
const TimePoint kT0 = TimePoint{} + 1'763'719'200s;  // 2025-11-21T10:00:00Z
const std::string kSecret(32, '\x5a');

const char* status_name(NonceIssuer::Status s) {
  switch (s) {
    case NonceIssuer::Status::valid:
      return "valid";
    case NonceIssuer::Status::expired:
      return "expired";
    case NonceIssuer::Status::unknown:
      return "unknown";
  }
  return "?";
}

TEST(NonceIssuer, Shape) {
  NonceIssuer issuer(kSecret, 300s);
  EXPECT_EQ(issuer.ttl(), 300s);
  const std::string n = issuer.issue("lab.example", kT0, "192.0.2.10");
  // Token-safe (base64url), so it never needs escaping in a quoted string.
  EXPECT_EQ(n.size(), 32u);
  EXPECT_EQ(n.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
            std::string::npos);
  // Unique even for the same inputs in the same second (each challenge's nc
  // starts at 1), and each one verifies on its own.
  const std::string again = issuer.issue("lab.example", kT0, "192.0.2.10");
  EXPECT_NE(again, n);
  EXPECT_EQ(issuer.verify(again, "lab.example", kT0, "192.0.2.10").status, NonceIssuer::Status::valid);
  EXPECT_NE(issuer.issue("lab.example", kT0 + 1s, "192.0.2.10"), n);
  EXPECT_NE(issuer.issue("lab.example", kT0, "192.0.2.11"), n);
  EXPECT_NE(issuer.issue("lab.example2", kT0, "192.0.2.10"), n);
}

TEST(NonceIssuer, AgeAndExpiry) {
  NonceIssuer issuer(kSecret, 300s);
  const std::string n = issuer.issue("lab.example", kT0, "192.0.2.10:5060");
  struct Row {
    const char* name;
    TimePoint now;
    NonceIssuer::Status status;
    std::chrono::seconds age;
  };
  const Row rows[] = {
      {"at issue", kT0, NonceIssuer::Status::valid, 0s},
      {"sub-second later", kT0 + 999ms, NonceIssuer::Status::valid, 0s},
      {"a minute later", kT0 + 60s, NonceIssuer::Status::valid, 60s},
      {"at ttl", kT0 + 300s, NonceIssuer::Status::valid, 300s},
      {"past ttl", kT0 + 301s, NonceIssuer::Status::expired, 301s},
      {"a day later", kT0 + 24h, NonceIssuer::Status::expired, 86400s},
      // Another instance's clock a little behind ours.
      {"slightly in the future", kT0 - 3s, NonceIssuer::Status::valid, 0s},
      {"far in the future", kT0 - 60s, NonceIssuer::Status::unknown, 0s},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    auto check = issuer.verify(n, "lab.example", r.now, "192.0.2.10:5060");
    EXPECT_STREQ(status_name(check.status), status_name(r.status));
    EXPECT_EQ(check.age, r.age);
  }
}

TEST(NonceIssuer, UnknownNonces) {
  NonceIssuer issuer(kSecret, 300s);
  const std::string n = issuer.issue("lab.example", kT0, "192.0.2.10");
  std::string upper_case = n;
  for (auto& c : upper_case) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  struct Row {
    const char* name;
    std::string nonce;
    std::string realm = "lab.example";
    std::string source = "192.0.2.10";
    std::string secret = kSecret;
  };
  const Row rows[] = {
      {"other realm", n, "lab.example.com"},
      {"other source", n, "lab.example", "192.0.2.11"},
      {"no source", n, "lab.example", ""},
      // The MAC input separates realm from source.
      {"realm and source split elsewhere", n, "lab.exampl", "e192.0.2.10"},
      {"other secret", n, "lab.example", "192.0.2.10", std::string(32, '\x5b')},
      {"restart with a new secret", n, "lab.example", "192.0.2.10", "another secret"},
      {"empty", ""},
      {"garbage", "not a nonce at all, really......"},
      {"RFC 2617 style", "dcd98b7102dd2f0e8b11d0f600bfb0c093"},
      {"one char short", n.substr(1)},
      {"one char long", n + "A"},
      {"case changed", upper_case},
      {"base64 with padding", n.substr(0, 30) + "=="},
  };
  for (const auto& r : rows) {
    SCOPED_TRACE(r.name);
    NonceIssuer verifier(r.secret, 300s);
    auto check = verifier.verify(r.nonce, r.realm, kT0 + 10s, r.source);
    EXPECT_STREQ(status_name(check.status), "unknown");
  }
  // Any one character changed, in the time or in the MAC, makes it unknown.
  for (std::size_t i = 0; i < n.size(); ++i) {
    std::string tampered = n;
    tampered[i] = tampered[i] == 'A' ? 'B' : 'A';
    SCOPED_TRACE("tampered at " + std::to_string(i) + ": " + tampered);
    EXPECT_STREQ(
        status_name(issuer.verify(tampered, "lab.example", kT0 + 10s, "192.0.2.10").status),
        "unknown");
  }
  // An expired nonce with a forged time is not made valid again.
  std::string old = issuer.issue("lab.example", kT0 - 1h, "192.0.2.10");
  std::string forged = n.substr(0, 10) + old.substr(10);
  EXPECT_STREQ(status_name(issuer.verify(forged, "lab.example", kT0, "192.0.2.10").status),
               "unknown");
}

TEST(NonceIssuer, EmptySecretStillWorks) {
  NonceIssuer empty("", 30s);
  const std::string n = empty.issue("r", kT0);
  EXPECT_STREQ(status_name(empty.verify(n, "r", kT0 + 1s).status), "valid");
  NonceIssuer other("x", 30s);
  EXPECT_STREQ(status_name(other.verify(n, "r", kT0 + 1s).status), "unknown");
}

TEST(NonceCounter, ReplayAndOrder) {
  NonceCounter counter;
  struct Step {
    const char* nonce;
    std::uint32_t nc;
    bool accepted;
  };
  const Step steps[] =
      {
          {"a", 1, true},    {"a", 1, false},  // same nc twice
          {"a", 2, true},    {"a", 3, true},     {"a", 3, false},
          {"b", 1, true},                      // another nonce counts on its own
          {"a", 7, true},                      // skipping ahead is fine
          {"a", 5, true},    {"a", 5, false},  // late, inside the window: once
          {"a", 4, true},    {"a", 6, true},     {"a", 6, false},
          {"a", 2, false},   {"a", 7, false},    {"a", 70, true},  // window now 7..70
          {"a", 8, true},    {"a", 8, false},  // 62 below the highest: inside, once
          {"a", 7, false},                     // 63 below: used before, still remembered
          {"a", 6, false},                     // 64 below: outside, cannot tell, refused
          {"a", 1000, true},                   // a jump past the window forgets the old bits
          {"a", 999, true},  {"a", 1000, false}, {"a", 936, false},
          {"b", 1, false},   {"b", 2, true},
      };
  for (std::size_t i = 0; i < std::size(steps); ++i) {
    const auto& s = steps[i];
    SCOPED_TRACE("step " + std::to_string(i) + ": " + s.nonce + " nc=" + std::to_string(s.nc));
    EXPECT_EQ(counter.accept(s.nonce, s.nc), s.accepted);
  }
  EXPECT_EQ(counter.size(), 2u);
}

TEST(NonceCounter, WindowSize) {
  struct Row {
    std::uint32_t window;
    std::uint32_t late;  // how far below the highest
    bool accepted;
  };
  const Row rows[] = {
      {8, 7, true},   {8, 8, false},   {1, 1, false},    {0, 1, false},      // 0 means 1
      {64, 63, true}, {64, 64, false}, {1000, 63, true}, {1000, 64, false},  // capped at 64 bits
  };
  for (const auto& r : rows) {
    SCOPED_TRACE("window " + std::to_string(r.window) + ", " + std::to_string(r.late) + " late");
    NonceCounter counter(16, r.window);
    ASSERT_TRUE(counter.accept("n", 100));
    EXPECT_EQ(counter.accept("n", 100 - r.late), r.accepted);
  }
}

TEST(NonceCounter, LeastRecentlyUsedBound) {
  NonceCounter counter(3);
  EXPECT_TRUE(counter.accept("a", 1));
  EXPECT_TRUE(counter.accept("b", 1));
  EXPECT_TRUE(counter.accept("c", 1));
  EXPECT_EQ(counter.size(), 3u);
  EXPECT_TRUE(counter.accept("a", 2));  // a is now the most recent; b the least
  EXPECT_TRUE(counter.accept("d", 1));  // evicts b
  EXPECT_EQ(counter.size(), 3u);
  EXPECT_FALSE(counter.accept("a", 1));  // still remembered
  EXPECT_FALSE(counter.accept("c", 1));
  EXPECT_FALSE(counter.accept("d", 1));
  // Order now d, c, a (most recent first): b's return evicts a.
  EXPECT_TRUE(counter.accept("b", 1));  // forgotten: a fresh start
  EXPECT_EQ(counter.size(), 3u);
  EXPECT_TRUE(counter.accept("a", 1));  // forgotten too
  EXPECT_FALSE(counter.accept("b", 1));

  NonceCounter many(100);
  for (std::uint32_t i = 0; i < 1000; ++i) {
    ASSERT_TRUE(many.accept("nonce-" + std::to_string(i), 1));
    ASSERT_LE(many.size(), 100u);
  }
  EXPECT_EQ(many.size(), 100u);
  EXPECT_FALSE(many.accept("nonce-999", 1));
  EXPECT_TRUE(many.accept("nonce-0", 1));
}

}  // namespace
}  // namespace sw::auth
