#include "auth/challenger.hpp"

#include <gtest/gtest.h>

#include "test_messages.hpp"

namespace sw::auth {
namespace {

using test::parse_ok;
using Clock = std::chrono::system_clock;

constexpr std::string_view kRealm = "lab.example";

std::shared_ptr<const CredentialStore> store() {
  std::vector<config::UserRecord> users{
      {"1001", "", "secret1001", {}},
      {"1002", "lab.example", "", {{"MD5", compute_ha1(Algorithm::md5, "1002", "lab.example", "pw1002")}}},
  };
  return std::make_shared<const CredentialStore>(users, kRealm);
}

ChallengerSettings settings() {
  ChallengerSettings s;
  s.realm = std::string(kRealm);
  s.algorithms = {Algorithm::sha256, Algorithm::md5};
  s.methods = {"REGISTER", "INVITE"};
  s.nonce_ttl = std::chrono::seconds(300);
  s.max_failures = 3;
  s.failure_window = std::chrono::seconds(60);
  s.block_time = std::chrono::seconds(60);
  return s;
}

std::string request(std::string_view method, std::string_view branch, std::string_view extra = "",
                    std::string_view to_tag = "") {
  std::string to = "To: <sip:1001@lab.example>";
  if (!to_tag.empty()) to += ";tag=" + std::string(to_tag);
  return std::string(method) + " sip:lab.example SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.5:5060;branch=" +
         std::string(branch) + "\r\nFrom: <sip:1001@lab.example>;tag=f\r\n" + to +
         "\r\nCall-ID: ch-1\r\nCSeq: 1 " + std::string(method) + "\r\nMax-Forwards: 70\r\n" + std::string(extra) +
         "Content-Length: 0\r\n\r\n";
}

// What a client computes for the first challenge of a 407.
std::string answer(const Challenger::Decision& d, std::string_view method, std::string_view user,
                   std::string_view password, std::string_view nc = "00000001", bool second_challenge = false) {
  auto value = d.headers.substr(std::string("Proxy-Authenticate: ").size());
  auto challenges = parse_challenges(value.substr(0, value.find("\r\n")));
  EXPECT_TRUE(challenges.ok());
  Challenge c = challenges->front();
  if (second_challenge) {
    auto second_line = d.headers.substr(d.headers.find("\r\n") + 2);
    second_line = second_line.substr(std::string("Proxy-Authenticate: ").size());
    c = parse_challenges(second_line.substr(0, second_line.find("\r\n")))->front();
  }
  auto ha1 = compute_ha1(c.algorithm, user, c.realm, password);
  DigestInput in{c.algorithm, ha1, c.nonce, "c0ffee", nc, Qop::auth, method, "sip:lab.example", ""};
  return "Proxy-Authorization: Digest username=\"" + std::string(user) + "\", realm=\"" + c.realm + "\", nonce=\"" +
         c.nonce + "\", uri=\"sip:lab.example\", response=\"" + compute_response(in) + "\", algorithm=" +
         std::string(to_string(c.algorithm)) + ", qop=auth, nc=" + std::string(nc) + ", cnonce=\"c0ffee\", opaque=\"" +
         c.opaque + "\"\r\n";
}

using Kind = Challenger::Decision::Kind;

TEST(Challenger, FirstRequestIsChallengedWithOneChallengePerAlgorithm) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto d = ch.check(parse_ok(request("REGISTER", "z9hG4bK1")), "10.0.0.5", now);
  ASSERT_EQ(d.kind, Kind::challenge);
  EXPECT_FALSE(d.stale);
  auto first = d.headers.find("algorithm=SHA-256");
  auto second = d.headers.find("algorithm=MD5");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second);  // RFC 8760: preferred first
  EXPECT_NE(d.headers.find("realm=\"lab.example\""), std::string::npos);
  EXPECT_NE(d.headers.find("qop=\"auth\""), std::string::npos);
}

TEST(Challenger, ValidAnswerIsAcceptedWithEachAlgorithm) {
  for (bool use_md5 : {false, true}) {
    SCOPED_TRACE(use_md5 ? "MD5" : "SHA-256");
    Challenger ch(settings(), "secret", store());
    auto now = Clock::now();
    auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK1")), "10.0.0.5", now);
    auto retry = parse_ok(request("REGISTER", "z9hG4bK2", answer(c, "REGISTER", "1001", "secret1001", "00000001", use_md5)));
    auto d = ch.check(retry, "10.0.0.5", now + std::chrono::seconds(1));
    ASSERT_EQ(d.kind, Kind::accept) << d.reason;
    ASSERT_NE(d.ours, nullptr);
    EXPECT_EQ(d.ours->id, sip::HeaderId::ProxyAuthorization);
    EXPECT_EQ(d.user, "1001");
  }
}

TEST(Challenger, HaOneOnlyUserAndOtherRealmsCredentialsIgnored) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("INVITE", "z9hG4bK1")), "10.0.0.5", now);
  // The MD5 challenge (second) for a user known only by its MD5 HA1; a
  // Proxy-Authorization for another realm rides along and is not ours.
  auto other = std::string("Proxy-Authorization: Digest username=\"x\", realm=\"provider\", nonce=\"n\", uri=\"sip:a\", response=\"0\"\r\n");
  auto retry = parse_ok(request("INVITE", "z9hG4bK2", other + answer(c, "INVITE", "1002", "pw1002", "00000001", true)));
  auto d = ch.check(retry, "10.0.0.5", now);
  ASSERT_EQ(d.kind, Kind::accept) << d.reason;
  EXPECT_NE(d.ours->value.find("realm=\"lab.example\""), std::string_view::npos);
}

TEST(Challenger, WrongPasswordCountsThenBlocks) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  for (int i = 1; i <= 3; ++i) {
    SCOPED_TRACE(i);
    auto bad = parse_ok(request("REGISTER", "z9hG4bKw" + std::to_string(i),
                                answer(c, "REGISTER", "1001", "wrong", "0000000" + std::to_string(i))));
    auto d = ch.check(bad, "10.0.0.5", now);
    EXPECT_EQ(d.failures, static_cast<std::uint32_t>(i));
    EXPECT_STREQ(d.reason, "wrong password");
    if (i < 3) {
      EXPECT_EQ(d.kind, Kind::challenge);
    } else {
      EXPECT_EQ(d.kind, Kind::forbid);
      EXPECT_TRUE(d.newly_blocked);
    }
  }
  // Blocked: even the right password is refused from that source, not from another.
  auto good = answer(c, "REGISTER", "1001", "secret1001", "00000009");
  EXPECT_EQ(ch.check(parse_ok(request("REGISTER", "z9hG4bKg1", good)), "10.0.0.5", now).kind, Kind::forbid);
  auto other = ch.check(parse_ok(request("REGISTER", "z9hG4bKo0")), "10.0.0.6", now);
  auto other_good = answer(other, "REGISTER", "1001", "secret1001");
  EXPECT_EQ(ch.check(parse_ok(request("REGISTER", "z9hG4bKg2", other_good)), "10.0.0.6", now).kind, Kind::accept);
  // After the block time the source may try again.
  auto later = now + std::chrono::seconds(61);
  auto fresh = ch.check(parse_ok(request("REGISTER", "z9hG4bKl0")), "10.0.0.5", later);
  auto retry = parse_ok(request("REGISTER", "z9hG4bKl1", answer(fresh, "REGISTER", "1001", "secret1001")));
  EXPECT_EQ(ch.check(retry, "10.0.0.5", later).kind, Kind::accept);
  EXPECT_EQ(ch.stats().blocks, 1u);
}

TEST(Challenger, UnknownUserIsAFailure) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  auto d = ch.check(parse_ok(request("REGISTER", "z9hG4bK1", answer(c, "REGISTER", "9999", "x"))), "10.0.0.5", now);
  EXPECT_EQ(d.kind, Kind::challenge);
  EXPECT_STREQ(d.reason, "unknown user");
  EXPECT_EQ(d.failures, 1u);
}

TEST(Challenger, ExpiredForeignAndReplayedNoncesAreStale) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  auto good = answer(c, "REGISTER", "1001", "secret1001");

  auto late = ch.check(parse_ok(request("REGISTER", "z9hG4bK1", good)), "10.0.0.5", now + std::chrono::seconds(301));
  EXPECT_EQ(late.kind, Kind::challenge);
  EXPECT_TRUE(late.stale);
  EXPECT_STREQ(late.reason, "nonce expired");
  EXPECT_NE(late.headers.find("stale=true"), std::string::npos);

  // Another instance (another secret, e.g. before a restart) did not issue it.
  Challenger restarted(settings(), "other secret", store());
  auto foreign = restarted.check(parse_ok(request("REGISTER", "z9hG4bK2", good)), "10.0.0.5", now);
  EXPECT_TRUE(foreign.stale);
  EXPECT_STREQ(foreign.reason, "nonce not issued by this instance");
  EXPECT_EQ(foreign.failures, 0u);  // never counted as a wrong password

  EXPECT_EQ(ch.check(parse_ok(request("REGISTER", "z9hG4bK3", good)), "10.0.0.5", now).kind, Kind::accept);
  auto replay = ch.check(parse_ok(request("REGISTER", "z9hG4bK4", good)), "10.0.0.5", now);
  EXPECT_EQ(replay.kind, Kind::challenge);
  EXPECT_TRUE(replay.stale);
  EXPECT_STREQ(replay.reason, "nonce count reused (replay)");
}

TEST(Challenger, RetransmissionGetsTheSameAnswerAndIsNotCountedTwice) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto first = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  auto again = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now + std::chrono::milliseconds(1500));
  EXPECT_EQ(first.headers, again.headers);

  auto bad = request("REGISTER", "z9hG4bKbad", answer(first, "REGISTER", "1001", "wrong"));
  EXPECT_EQ(ch.check(parse_ok(bad), "10.0.0.5", now).failures, 1u);
  EXPECT_EQ(ch.check(parse_ok(bad), "10.0.0.5", now).kind, Kind::challenge);
  EXPECT_EQ(ch.stats().failures, 1u);

  // An accepted request retransmitted is accepted again (its nc is not a replay).
  auto good = request("REGISTER", "z9hG4bKgood", answer(first, "REGISTER", "1001", "secret1001", "00000005"));
  EXPECT_EQ(ch.check(parse_ok(good), "10.0.0.5", now).kind, Kind::accept);
  auto retransmitted = ch.check(parse_ok(good), "10.0.0.5", now);
  EXPECT_EQ(retransmitted.kind, Kind::accept);
  EXPECT_NE(retransmitted.ours, nullptr);
}

// A flood of new transactions (more than the challenger remembers) must not
// make it forget the newest ones: the oldest decisions go first, so a phone's
// retransmission still gets the nonce it was sent. (Before, a full memory was
// scanned on every request and the newest were not remembered.)
TEST(Challenger, WhenTheTransactionMemoryIsFullTheOldestIsForgotten) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  for (int i = 0; i < 70000; ++i)
    ch.check(parse_ok(request("REGISTER", "z9hG4bKflood" + std::to_string(i))), "10.0.0.5", now);
  auto latest = ch.check(parse_ok(request("REGISTER", "z9hG4bKlatest")), "10.0.0.5", now);
  auto again = ch.check(parse_ok(request("REGISTER", "z9hG4bKlatest")), "10.0.0.5", now + std::chrono::seconds(1));
  EXPECT_EQ(latest.headers, again.headers);
  auto oldest = ch.check(parse_ok(request("REGISTER", "z9hG4bKflood0")), "10.0.0.5", now + std::chrono::seconds(1));
  EXPECT_NE(oldest.headers, latest.headers);  // forgotten: a fresh nonce
}

TEST(Challenger, ChallengesInTheSameSecondGetDistinctNoncesAndEachIsUsable) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto a = ch.check(parse_ok(request("REGISTER", "z9hG4bKa0")), "10.0.0.5", now);
  auto b = ch.check(parse_ok(request("INVITE", "z9hG4bKb0")), "10.0.0.6", now);
  EXPECT_NE(a.headers, b.headers);
  // Both clients answer with nc=00000001 in the same second: neither is a replay.
  EXPECT_EQ(ch.check(parse_ok(request("REGISTER", "z9hG4bKa1", answer(a, "REGISTER", "1001", "secret1001"))),
                     "10.0.0.5", now).kind, Kind::accept);
  EXPECT_EQ(ch.check(parse_ok(request("INVITE", "z9hG4bKb1", answer(b, "INVITE", "1001", "secret1001"))),
                     "10.0.0.6", now).kind, Kind::accept);
}

TEST(Challenger, ForgedAnswerDoesNotUseUpTheNonceCount) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  // An attacker spoofing the phone's address answers the nonce with nc=1 and a
  // wrong response first...
  auto forged = ch.check(parse_ok(request("REGISTER", "z9hG4bKf", answer(c, "REGISTER", "1001", "guess"))), "10.0.0.5", now);
  EXPECT_STREQ(forged.reason, "wrong password");
  // ...the phone's real nc=1 answer is still accepted.
  auto real = ch.check(parse_ok(request("REGISTER", "z9hG4bKr", answer(c, "REGISTER", "1001", "secret1001"))), "10.0.0.5", now);
  EXPECT_EQ(real.kind, Kind::accept) << real.reason;
}

TEST(Challenger, RememberedAcceptIsNotAPassForOtherRequestsWithTheSameBranch) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  auto good = answer(c, "REGISTER", "1001", "secret1001");
  ASSERT_EQ(ch.check(parse_ok(request("REGISTER", "z9hG4bKok", good)), "10.0.0.5", now).kind, Kind::accept);
  // Someone who saw that Via reuses its branch for an INVITE with made-up credentials.
  auto bogus = std::string("Proxy-Authorization: Digest username=\"nobody\", realm=\"lab.example\", nonce=\"x\", "
                           "uri=\"sip:x\", response=\"00\"\r\n");
  EXPECT_NE(ch.check(parse_ok(request("INVITE", "z9hG4bKok", bogus)), "10.0.0.9", now).kind, Kind::accept);
  // Same request, same branch, other credentials: verified again, not replayed.
  EXPECT_NE(ch.check(parse_ok(request("REGISTER", "z9hG4bKok", bogus)), "10.0.0.5", now).kind, Kind::accept);
}

TEST(Challenger, AnswerWithoutQopIsRefusedWhenQopWasOffered) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto value = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now).headers;
  value = value.substr(std::string("Proxy-Authenticate: ").size());
  auto c = parse_challenges(value.substr(0, value.find("\r\n")))->front();
  auto ha1 = compute_ha1(c.algorithm, "1001", c.realm, "secret1001");
  DigestInput in{c.algorithm, ha1, c.nonce, "", "", Qop::none, "REGISTER", "sip:lab.example", ""};
  auto header = "Proxy-Authorization: Digest username=\"1001\", realm=\"lab.example\", nonce=\"" + c.nonce +
                "\", uri=\"sip:lab.example\", response=\"" + compute_response(in) + "\", algorithm=" +
                std::string(to_string(c.algorithm)) + "\r\n";
  auto d = ch.check(parse_ok(request("REGISTER", "z9hG4bK1", header)), "10.0.0.5", now);
  EXPECT_EQ(d.kind, Kind::challenge);
  EXPECT_STREQ(d.reason, "qop required");
  EXPECT_EQ(d.failures, 0u);
}

TEST(Challenger, NonceIsBoundToTheClientAddress) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  // An answer from another address (spoofed, or a rebinding NAT) is stale, never a counted failure.
  auto d = ch.check(parse_ok(request("REGISTER", "z9hG4bK1", answer(c, "REGISTER", "1001", "wrong"))), "10.0.0.66", now);
  EXPECT_EQ(d.kind, Kind::challenge);
  EXPECT_TRUE(d.stale);
  EXPECT_EQ(d.failures, 0u);
  EXPECT_EQ(ch.tracked_sources(), 0u);
}

TEST(Challenger, WhatIsNeverChallenged) {
  Challenger ch(settings(), "secret", store());
  auto now = Clock::now();
  for (auto [method, tag] : {std::pair{"ACK", ""}, std::pair{"CANCEL", ""}, std::pair{"OPTIONS", ""},
                             std::pair{"INVITE", "dialog-tag"}, std::pair{"BYE", "t"}}) {
    SCOPED_TRACE(method);
    EXPECT_EQ(ch.check(parse_ok(request(method, "z9hG4bKp", "", tag)), "10.0.0.5", now).kind, Kind::pass);
  }
}

TEST(Challenger, AlgorithmNotOfferedIsChallengedAgain) {
  auto s = settings();
  s.algorithms = {Algorithm::sha256};
  Challenger ch(s, "secret", store());
  auto now = Clock::now();
  auto c = ch.check(parse_ok(request("REGISTER", "z9hG4bK0")), "10.0.0.5", now);
  auto md5 = answer(c, "REGISTER", "1001", "secret1001");
  auto pos = md5.find("algorithm=SHA-256");
  md5.replace(pos, 17, "algorithm=MD5");
  auto d = ch.check(parse_ok(request("REGISTER", "z9hG4bK1", md5)), "10.0.0.5", now);
  EXPECT_EQ(d.kind, Kind::challenge);
  EXPECT_STREQ(d.reason, "algorithm not offered");
}

}  // namespace
}  // namespace sw::auth
