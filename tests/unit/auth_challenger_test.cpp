#include "auth/challenger.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "test_messages.hpp"

namespace sw::auth {
namespace {

using test::parse_ok;
using Clock = std::chrono::system_clock;

constexpr std::string_view kRealm = "lab.example";

std::shared_ptr<const CredentialStore> store() {
  std::vector<config::UserRecord> users{
      {"1001", "", "secret1001", {}},
      {"1003", "", "secret1003", {}},
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
      EXPECT_EQ(d.source_block, std::chrono::seconds(60));
      EXPECT_EQ(d.user_block, std::chrono::seconds(0));
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
  EXPECT_EQ(ch.stats().source_blocks, 1u);
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

// One try from source: a REGISTER, then (if challenged) its answer with password.
Challenger::Decision attempt(Challenger& ch, std::string_view source, std::string_view user, std::string_view password,
                             Clock::time_point now) {
  static int n = 0;
  auto branch = "z9hG4bKtry" + std::to_string(++n);
  auto c = ch.check(parse_ok(request("REGISTER", branch + "c")), source, now);
  if (c.kind != Kind::challenge) return c;
  return ch.check(parse_ok(request("REGISTER", branch + "a", answer(c, "REGISTER", user, password))), source, now);
}

ChallengerSettings user_guard() {
  auto s = settings();
  s.max_failures = 3;
  s.max_user_failures = 4;
  return s;
}

// Credential stuffing: one guess per address, so no source reaches its limit.
TEST(Challenger, UsernameIsBlockedAfterFailuresFromManySources) {
  Challenger ch(user_guard(), "secret", store());
  auto now = Clock::now();
  for (int i = 1; i <= 4; ++i) {
    SCOPED_TRACE(i);
    auto d = attempt(ch, "10.1.0." + std::to_string(i), "1001", "guess", now);
    EXPECT_EQ(d.failures, 1u);
    EXPECT_EQ(d.user_failures, static_cast<std::uint32_t>(i));
    EXPECT_EQ(d.source_block.count(), 0);
    EXPECT_EQ(d.kind, i < 4 ? Kind::challenge : Kind::forbid);
    EXPECT_EQ(d.user_block, std::chrono::seconds(i < 4 ? 0 : 60));
  }
  EXPECT_EQ(ch.stats().user_blocks, 1u);
  // The username is blocked from a new address, even with the right password...
  auto blocked = attempt(ch, "10.1.0.9", "1001", "secret1001", now);
  EXPECT_EQ(blocked.kind, Kind::forbid);
  EXPECT_STREQ(blocked.reason, "user blocked after repeated authentication failures");
  EXPECT_EQ(blocked.user, "1001");
  // ...that address itself is not, nor is another user.
  EXPECT_EQ(attempt(ch, "10.1.0.9", "1003", "secret1003", now).kind, Kind::accept);
  EXPECT_EQ(attempt(ch, "10.1.0.9", "1001", "secret1001", now + std::chrono::seconds(61)).kind, Kind::accept);
}

// An attacker must not lock a working phone out: a source that authenticated
// as the user recently passes that user's block (and its success renews that).
TEST(Challenger, SourceThatAuthenticatedAsTheUserPassesItsBlock) {
  auto s = user_guard();
  s.trusted_for = std::chrono::seconds(10);
  Challenger ch(s, "secret", store());
  auto t0 = Clock::now();
  ASSERT_EQ(attempt(ch, "10.0.0.5", "1001", "secret1001", t0).kind, Kind::accept);
  for (int i = 1; i <= 4; ++i) attempt(ch, "10.1.0." + std::to_string(i), "1001", "guess", t0 + std::chrono::seconds(1));
  ASSERT_EQ(ch.stats().user_blocks, 1u);
  using std::chrono::seconds;
  EXPECT_EQ(attempt(ch, "10.0.0.5", "1001", "secret1001", t0 + seconds(5)).kind, Kind::accept);
  EXPECT_EQ(attempt(ch, "10.0.0.6", "1001", "secret1001", t0 + seconds(5)).kind, Kind::forbid);
  EXPECT_EQ(attempt(ch, "10.0.0.5", "1001", "secret1001", t0 + seconds(14)).kind, Kind::accept);
  // Trust lapses trusted_for after the last success.
  EXPECT_EQ(attempt(ch, "10.0.0.5", "1001", "secret1001", t0 + seconds(25)).kind, Kind::forbid);
}

TEST(Challenger, UnknownUsernamesCountAgainstTheSourceOnly) {
  Challenger ch(user_guard(), "secret", store());
  auto now = Clock::now();
  for (int i = 0; i < 3; ++i) attempt(ch, "10.0.0.5", "scan" + std::to_string(i), "x", now);
  EXPECT_EQ(ch.tracked_users(), 0u);
  EXPECT_EQ(ch.stats().source_blocks, 1u);
  EXPECT_EQ(attempt(ch, "10.0.0.5", "1001", "secret1001", now).kind, Kind::forbid);
}

TEST(Challenger, EachNextBlockOfASourceIsTwiceAsLong) {
  auto s = settings();
  s.max_block_time = std::chrono::seconds(100);
  Challenger ch(s, "secret", store());
  auto now = Clock::now();
  for (auto want : {60, 100, 100}) {
    SCOPED_TRACE(want);
    Challenger::Decision d;
    for (int i = 0; i < 3; ++i) d = attempt(ch, "10.0.0.5", "1001", "wrong", now);
    EXPECT_EQ(d.kind, Kind::forbid);
    EXPECT_EQ(d.source_block, std::chrono::seconds(want));
    EXPECT_EQ(attempt(ch, "10.0.0.5", "1001", "secret1001", now + std::chrono::seconds(want - 1)).kind, Kind::forbid);
    now += std::chrono::seconds(want);
  }
}

// ---- the failure counter under the guard ----------------------------------

using std::chrono::seconds;

FailureLimits limits(std::size_t capacity = 65536) {
  return {3, seconds(60), seconds(10), seconds(35), seconds(100), capacity};
}

// Fails key until it is blocked; the block's length.
seconds block(FailureCounter& c, std::string_view key, Clock::time_point now) {
  for (int i = 0; i < 100; ++i)
    if (auto r = c.fail(key, now); r.block.count()) return r.block;
  return seconds(0);
}

TEST(FailureCounter, BlockDoublesUpToTheCap) {
  FailureCounter c(limits());
  auto now = Clock::now();
  EXPECT_EQ(c.fail("k", now).failures, 1u);
  EXPECT_EQ(c.fail("k", now).failures, 2u);
  auto r = c.fail("k", now);
  EXPECT_EQ(r.failures, 3u);
  EXPECT_EQ(r.block, seconds(10));
  EXPECT_EQ(c.blocked_for("k", now + seconds(4)), seconds(6));
  EXPECT_EQ(c.blocked_for("other", now), seconds(0));
  // Failures while blocked do not count towards the next block.
  EXPECT_EQ(c.fail("k", now + seconds(1)).block.count(), 0);
  for (auto want : {20, 35, 35}) {
    now += seconds(40);  // each block over, well within backoff_reset
    EXPECT_EQ(c.blocked_for("k", now), seconds(0));
    EXPECT_EQ(block(c, "k", now), seconds(want));
  }
}

TEST(FailureCounter, BackOffIsForgottenAfterAQuietPeriod) {
  FailureCounter c(limits());
  auto now = Clock::now();
  EXPECT_EQ(block(c, "k", now), seconds(10));
  EXPECT_EQ(block(c, "k", now + seconds(10 + 99)), seconds(20));  // 99 s quiet: still remembered
  now += seconds(10 + 99 + 20 + 100);                             // 100 s quiet after the second block
  EXPECT_EQ(block(c, "k", now), seconds(10));
  c.purge(now + seconds(10 + 99));
  EXPECT_EQ(c.size(), 1u);
  c.purge(now + seconds(10 + 100));
  EXPECT_EQ(c.size(), 0u);
}

TEST(FailureCounter, FullTableDropsExpiredThenOldestPlainThenOldestBlocked) {
  FailureCounter c(limits(3));
  auto now = Clock::now();
  block(c, "blocked", now);
  c.fail("old", now);
  c.fail("new", now + seconds(1));
  c.fail("a", now + seconds(2));  // full: the oldest plain key goes
  EXPECT_EQ(c.evicted(), 1u);
  EXPECT_EQ(c.fail("new", now + seconds(2)).failures, 2u);
  EXPECT_EQ(c.fail("old", now + seconds(3)).failures, 1u);  // forgotten (and "a" made room for it)
  EXPECT_EQ(c.blocked_for("blocked", now + seconds(3)), seconds(7));
  // Expired keys make room without counting as evictions.
  auto later = now + seconds(200);
  c.fail("b", later);
  c.fail("c", later);
  EXPECT_EQ(c.evicted(), 2u);
  // Only blocked keys left: the least recently active goes.
  FailureCounter d(limits(2));
  block(d, "x", now);
  block(d, "y", now);
  d.blocked_for("x", now);  // x knocks again: y is now the oldest
  d.fail("z", now);
  EXPECT_GT(d.blocked_for("x", now).count(), 0);
  EXPECT_EQ(d.blocked_for("y", now).count(), 0);
}

// A flood of distinct sources (or usernames) neither grows the table past its
// size nor slows each failure down (an earlier guard scanned every key per
// request once full), and does not free a blocked key.
TEST(FailureCounter, FloodOfDistinctKeysStaysBoundedAndFast) {
  constexpr std::size_t kCapacity = 65536;
  FailureCounter c(limits(kCapacity));
  auto now = Clock::now();
  block(c, "attacker", now);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200000; ++i) {
    c.fail("2001:db8::" + std::to_string(i), now);
    ASSERT_LE(c.size(), kCapacity);
  }
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(c.size(), kCapacity);
  EXPECT_EQ(c.evicted(), 200000u + 1 - kCapacity);
  EXPECT_GT(c.blocked_for("attacker", now).count(), 0);
  // ~0.3 s here (~1.5 us a failure); a scan of the full table per failure
  // would take over 10 s. The margin leaves room for sanitizer builds.
  EXPECT_LT(took, std::chrono::seconds(5));
  RecordProperty("ns_per_failure", static_cast<int>(std::chrono::duration<double, std::nano>(took).count() / 200000));
}

}  // namespace
}  // namespace sw::auth
