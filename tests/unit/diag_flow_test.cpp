#include "diag/flow_tracker.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <regex>
#include <string>
#include <type_traits>
#include <vector>

#include "auth/digest.hpp"
#include "diag/seal.hpp"
#include "test_messages.hpp"

// The auth flow tracker, fed hand-built message sequences as the proxy observes
// them: every request received from the phone is also seen as sent upstream, and
// every response received from upstream as sent to the phone (those copies must
// be ignored). Time is injected; nothing sleeps.
namespace sw::diag {
namespace {

using test::parse_ok;
using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

constexpr std::string_view kRealm = "sip.example.com";  // the upstream registrar
constexpr std::string_view kOwnRealm = "lab.example";   // sipwitness's own 407s
constexpr std::string_view kPhone = "192.0.2.10:5060";
constexpr std::string_view kUpstream = "203.0.113.5:5060";
constexpr std::string_view kAor = "sip:1001@sip.example.com";
constexpr std::string_view kRuri = "sip:sip.example.com";
constexpr std::string_view kCnonce = "0a4f113b";
constexpr std::string_view kPassword = "S3cr3t-Pa55";
constexpr std::string_view kWrongPassword = "Wr0ng-Pa55";

const Clock::time_point kT0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 21} + 10h;
Clock::time_point at(long long ms) { return kT0 + std::chrono::milliseconds(ms); }

// ---- message builders ------------------------------------------------------

struct Req {
  std::string method = "REGISTER";
  std::string call_id = "reg-1@192.0.2.10";
  std::uint32_t cseq = 1;
  std::string from_tag = "ft1";
  std::string request_uri = std::string(kRuri);
  std::string to_uri = std::string(kAor);
  std::string to_tag{};
  std::string auth{};  // whole header lines (CRLF-terminated): Authorization / Proxy-Authorization
};

std::string via_and_ids(const Req& r) {
  auto cseq = std::to_string(r.cseq);
  return "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-" + r.from_tag + "-" + cseq + "\r\n" +
         "From: <sip:1001@sip.example.com>;tag=" + r.from_tag + "\r\n";
}

std::string request(const Req& r) {
  std::string to = "To: <" + r.to_uri + ">";
  if (!r.to_tag.empty()) to += ";tag=" + r.to_tag;
  return r.method + " " + r.request_uri + " SIP/2.0\r\n" + via_and_ids(r) + to + "\r\nCall-ID: " + r.call_id +
         "\r\nCSeq: " + std::to_string(r.cseq) + " " + r.method +
         "\r\nMax-Forwards: 70\r\nContact: <sip:1001@192.0.2.10:5060>\r\n" + r.auth + "Content-Length: 0\r\n\r\n";
}

std::string_view reason_of(int status) {
  switch (status) {
    case 100: return "Trying";
    case 180: return "Ringing";
    case 200: return "OK";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 407: return "Proxy Authentication Required";
    case 486: return "Busy Here";
    default: return "Whatever";
  }
}

// The response to `r` (same Call-ID, CSeq, From tag), with challenge lines.
std::string response(int status, const Req& r, std::string_view auth = "") {
  std::string to = "To: <" + r.to_uri + ">";
  if (status > 100) to += ";tag=" + (r.to_tag.empty() ? std::string("srv") : r.to_tag);
  return "SIP/2.0 " + std::to_string(status) + " " + std::string(reason_of(status)) + "\r\n" + via_and_ids(r) + to +
         "\r\nCall-ID: " + r.call_id + "\r\nCSeq: " + std::to_string(r.cseq) + " " + r.method + "\r\n" +
         std::string(auth) + "Content-Length: 0\r\n\r\n";
}

struct Chal {
  std::string header = "WWW-Authenticate";
  std::string realm = std::string(kRealm);
  std::string nonce = "nonce-a";
  std::string algorithm = "MD5";  // "" = not given (MD5)
  std::string qop = "auth";       // "" = no qop offered (RFC 2069)
  bool stale = false;
};

std::string challenge(const Chal& c) {
  std::string out = c.header + ": Digest realm=\"" + c.realm + "\", nonce=\"" + c.nonce + "\"";
  if (!c.algorithm.empty()) out += ", algorithm=" + c.algorithm;
  if (!c.qop.empty()) out += ", qop=\"" + c.qop + "\"";
  if (c.stale) out += ", stale=true";
  return out + "\r\n";
}

std::string challenges(const std::vector<Chal>& cs) {
  std::string out;
  for (const auto& c : cs) out += challenge(c);
  return out;
}

struct Cred {
  std::string header = "Authorization";
  std::string username = "1001";
  std::string realm = std::string(kRealm);
  std::string password = std::string(kPassword);
  std::string nonce = "nonce-a";
  std::string uri = std::string(kRuri);
  std::string algorithm = "MD5";  // "" = not given (MD5)
  std::string qop = "auth";       // "" = none
  std::string method = "REGISTER";
  bool raw_sess = false;  // -sess computed over HA1's raw bytes (an RFC 2617 reading)
};

// The response= a client with this password computes (real digest math).
std::string digest_of(const Cred& c) {
  auto alg = auth::parse_algorithm(c.algorithm.empty() ? "MD5" : c.algorithm).value();
  auto qop = c.qop.empty() ? auth::Qop::none : auth::parse_qop(c.qop).value();
  auto ha1 = auth::compute_ha1(alg, c.username, c.realm, c.password);
  auth::DigestInput in{alg, ha1, c.nonce, c.qop.empty() ? std::string_view() : kCnonce,
                       c.qop.empty() ? std::string_view() : std::string_view("00000001"),
                       qop, c.method, c.uri, ""};
  return auth::compute_response(in, c.raw_sess ? auth::SessVariant::raw : auth::SessVariant::hex);
}

std::string credential(const Cred& c) {
  std::string out = c.header + ": Digest username=\"" + c.username + "\", realm=\"" + c.realm + "\", nonce=\"" +
                    c.nonce + "\", uri=\"" + c.uri + "\", response=\"" + digest_of(c) + "\"";
  if (!c.algorithm.empty()) out += ", algorithm=" + c.algorithm;
  if (!c.qop.empty()) out += ", qop=" + c.qop + ", nc=00000001, cnonce=\"" + std::string(kCnonce) + "\"";
  return out + "\r\n";
}

std::shared_ptr<const auth::CredentialStore> known_store(std::string_view realm) {
  std::vector<config::UserRecord> users{{"1001", std::string(realm), std::string(kPassword), {}}};
  return std::make_shared<const auth::CredentialStore>(users, realm);
}

// ---- evidence helpers -------------------------------------------------------

EvidenceValue S(std::string s) { return EvidenceValue{std::move(s)}; }
EvidenceValue N(double d) { return EvidenceValue{d}; }
EvidenceValue B(bool b) { return EvidenceValue{b}; }
EvidenceValue L(std::vector<std::string> l) { return EvidenceValue{std::move(l)}; }

std::string describe(const EvidenceValue& e) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return "\"" + x + "\"";
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          std::string out = "[";
          for (const auto& s : x) out += (out.size() > 1 ? ",\"" : "\"") + s + "\"";
          return out + "]";
        } else {
          return std::to_string(x);
        }
      },
      e);
}

std::string all_evidence(const Verdict& v) {
  std::string out = "{";
  for (const auto& [k, val] : v.evidence) out += k + ": " + describe(val) + "; ";
  return out + "}";
}

const EvidenceValue* find_evidence(const Verdict& v, std::string_view key) {
  for (const auto& [k, val] : v.evidence)
    if (k == key) return &val;
  return nullptr;
}

std::optional<double> number(const EvidenceValue& e) {
  if (const auto* i = std::get_if<long long>(&e)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(&e)) return *d;
  return std::nullopt;
}

// Numbers compare by value whether written as integer or decimal seconds; other
// values by type and value (a flag must be a bool, not "true").
void expect_evidence(const Verdict& v, const std::string& key, const EvidenceValue& want) {
  const auto* got = find_evidence(v, key);
  if (got == nullptr) {
    ADD_FAILURE() << "evidence \"" << key << "\" missing; evidence: " << all_evidence(v);
    return;
  }
  if (auto w = number(want)) {
    auto g = number(*got);
    if (!g) {
      ADD_FAILURE() << "evidence \"" << key << "\" is not a number: " << describe(*got);
      return;
    }
    EXPECT_NEAR(*g, *w, 0.001) << "evidence " << key;
  } else {
    EXPECT_TRUE(*got == want) << "evidence \"" << key << "\": got " << describe(*got) << ", want " << describe(want);
  }
}

void expect_no_evidence(const Verdict& v, const std::string& key) {
  const auto* got = find_evidence(v, key);
  EXPECT_EQ(got, nullptr) << "evidence \"" << key << "\" should be absent, is " << (got ? describe(*got) : "");
}

struct Want {
  VerdictKind verdict = VerdictKind::ok;
  Confidence confidence = Confidence::certain;
  int challenges = 0;
  int final_status = 0;
  std::string user{};
  std::string method = "REGISTER";
  std::string aor = std::string(kAor);
  std::string source = std::string(kPhone);
};

void expect_verdict(const Verdict& v, std::string_view call_id, const Want& w) {
  EXPECT_EQ(to_string(v.verdict), to_string(w.verdict)) << all_evidence(v);
  EXPECT_EQ(to_string(v.confidence), to_string(w.confidence));
  EXPECT_EQ(v.call_id, call_id);
  EXPECT_EQ(v.method, w.method);
  EXPECT_EQ(v.aor, w.aor);
  EXPECT_EQ(v.user, w.user);
  EXPECT_EQ(v.source, w.source);
  EXPECT_EQ(v.challenges, w.challenges);
  EXPECT_EQ(v.final_status, w.final_status);
  EXPECT_FALSE(v.hint.empty());
}

// ---- fixture ----------------------------------------------------------------

class DiagFlow : public ::testing::Test {
 protected:
  DiagFlow() { start(TrackerSettings{}); }

  void start(TrackerSettings s) {
    verdicts_.clear();
    tracker_ = std::make_unique<FlowTracker>(std::move(s), [this](const Verdict& v) { verdicts_.push_back(v); });
  }

  void feed(Direction d, Leg leg, Clock::time_point t, std::string_view peer, std::string text, bool local = false) {
    auto m = parse_ok(std::move(text));
    tracker_->on_message(Observed{d, leg, t, "udp", peer, m, local});
  }
  // A request from the phone, and the copy relayed upstream (ignored).
  void from_phone(const Req& r, Clock::time_point t) {
    feed(Direction::received, Leg::phone, t, kPhone, request(r));
    feed(Direction::sent, Leg::upstream, t, kUpstream, request(r));
  }
  // A response from upstream, and the copy relayed to the phone (ignored).
  void from_upstream(int status, const Req& r, Clock::time_point t, std::string_view auth = "") {
    feed(Direction::received, Leg::upstream, t, kUpstream, response(status, r, auth));
    feed(Direction::sent, Leg::phone, t, kPhone, response(status, r, auth));
  }
  // sipwitness's own answer to the phone (its 407 or 403).
  void from_sipwitness(int status, const Req& r, Clock::time_point t, std::string_view auth = "") {
    feed(Direction::sent, Leg::phone, t, kPhone, response(status, r, auth), true);
  }

  const Verdict* verdict_for(std::string_view call_id) const {
    for (const auto& v : verdicts_)
      if (v.call_id == call_id) return &v;
    return nullptr;
  }

  // REGISTER -> 401 (first) -> REGISTER with `answer` -> 401 (same challenge,
  // fresh nonce, stale as given) -> silence; ticks just before and at the timeout.
  void rejected_answer(const std::string& call_id, const std::vector<Chal>& first, const Cred& answer,
                       bool stale_after, int answer_delay_ms = 1000) {
    Req r{.call_id = call_id};
    from_phone(r, at(0));
    from_upstream(401, r, at(100), challenges(first));
    r.cseq = 2;
    r.auth = credential(answer);
    from_phone(r, at(100 + answer_delay_ms));
    Chal again = first.front();
    again.nonce = "nonce-b";
    again.stale = stale_after;
    from_upstream(401, r, at(200 + answer_delay_ms), challenge(again));
    tracker_->tick(at(200 + answer_delay_ms) + 31s);
    EXPECT_TRUE(verdicts_.empty()) << "ended before flow_timeout";
    tracker_->tick(at(200 + answer_delay_ms) + 32s);
  }

  std::unique_ptr<FlowTracker> tracker_;
  std::vector<Verdict> verdicts_;
};

// ---- final responses --------------------------------------------------------

TEST_F(DiagFlow, FinalResponseEndsTheFlow) {
  struct Row {
    const char* name;
    std::string method;
    bool challenged;   // an upstream 401 and an answer before the final response
    int status;
    bool by_sipwitness;  // the final response is sipwitness's own (sent, local)
    VerdictKind want;
  };
  const std::vector<Row> rows{
      {"200 without challenge", "REGISTER", false, 200, false, VerdictKind::ok},
      {"486 without challenge is not an auth failure", "INVITE", false, 486, false, VerdictKind::ok},
      {"200 after a 401: the normal flow", "REGISTER", true, 200, false, VerdictKind::ok_after_challenge},
      {"404 after a 401", "INVITE", true, 404, false, VerdictKind::ok_after_challenge},
      {"403 without challenge", "REGISTER", false, 403, false, VerdictKind::forbidden},
      {"403 after credentials", "REGISTER", true, 403, false, VerdictKind::forbidden},
      {"403 from sipwitness itself", "REGISTER", true, 403, true, VerdictKind::forbidden},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    start(TrackerSettings{});
    Req r{.method = row.method, .call_id = "final-1"};
    from_phone(r, at(0));
    feed(Direction::received, Leg::upstream, at(10), kUpstream, response(100, r));  // 1xx: ignored
    if (row.challenged) {
      from_upstream(401, r, at(100), challenge(Chal{}));
      r.cseq = 2;
      r.auth = credential(Cred{.method = row.method});
      from_phone(r, at(1100));
    }
    EXPECT_TRUE(verdicts_.empty());
    EXPECT_EQ(tracker_->live_flows(), 1u);
    if (row.by_sipwitness)
      from_sipwitness(row.status, r, at(1500));
    else
      from_upstream(row.status, r, at(1500));

    ASSERT_EQ(verdicts_.size(), 1u);
    const auto& v = verdicts_.front();
    expect_verdict(v, "final-1",
                   Want{.verdict = row.want,
                        .confidence = Confidence::certain,
                        .challenges = row.challenged ? 1 : 0,
                        .final_status = row.status,
                        .user = row.challenged ? "1001" : "",
                        .method = row.method});
    EXPECT_EQ(v.ts, at(1500));
    EXPECT_EQ(tracker_->live_flows(), 0u);
    EXPECT_EQ(tracker_->verdicts(), 1u);
  }
}

TEST_F(DiagFlow, RequestFromTheUpstreamLegIsTrackedWithItsPeerAsSource) {
  Req r{.method = "INVITE", .call_id = "incoming-1", .request_uri = "sip:1001@192.0.2.10:5060"};
  feed(Direction::received, Leg::upstream, at(0), kUpstream, request(r));
  feed(Direction::sent, Leg::phone, at(0), kPhone, request(r));
  feed(Direction::received, Leg::phone, at(300), kPhone, response(180, r));
  feed(Direction::received, Leg::phone, at(2000), kPhone, response(200, r));
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_.front(), "incoming-1",
                 Want{.verdict = VerdictKind::ok, .final_status = 200, .method = "INVITE",
                      .source = std::string(kUpstream)});
}

// ---- what is not tracked ----------------------------------------------------

TEST_F(DiagFlow, UntrackedRequestsStartNoFlow) {
  struct Row {
    const char* name;
    Req req;
    Direction direction;
  };
  const std::vector<Row> rows{
      {"ACK", Req{.method = "ACK", .call_id = "u-ack"}, Direction::received},
      {"CANCEL", Req{.method = "CANCEL", .call_id = "u-cancel"}, Direction::received},
      {"in-dialog BYE", Req{.method = "BYE", .call_id = "u-bye", .to_tag = "dlg"}, Direction::received},
      {"in-dialog re-INVITE", Req{.method = "INVITE", .call_id = "u-reinvite", .to_tag = "dlg"},
       Direction::received},
      {"a request only seen as sent", Req{.method = "INVITE", .call_id = "u-sent"}, Direction::sent},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    start(TrackerSettings{});
    feed(row.direction, Leg::phone, at(0), kPhone, request(row.req));
    EXPECT_EQ(tracker_->live_flows(), 0u);
    // Even a challenge to it (e.g. a re-INVITE challenged in the dialog) starts nothing.
    from_upstream(401, row.req, at(100), challenge(Chal{}));
    from_upstream(200, row.req, at(200));
    EXPECT_EQ(tracker_->live_flows(), 0u);
    tracker_->finish(at(100000));
    EXPECT_TRUE(verdicts_.empty());
    EXPECT_EQ(tracker_->verdicts(), 0u);
  }
}

TEST_F(DiagFlow, SentCopiesAreIgnoredButSipwitnessOwnRepliesCount) {
  // A 401 or 200 seen only as sent (a relayed copy) is not a response to the flow.
  Req r{.method = "INVITE", .call_id = "copies-1"};
  from_phone(r, at(0));
  feed(Direction::sent, Leg::phone, at(100), kPhone, response(401, r, challenge(Chal{})));
  feed(Direction::sent, Leg::phone, at(200), kPhone, response(200, r));
  EXPECT_TRUE(verdicts_.empty());
  EXPECT_EQ(tracker_->live_flows(), 1u);
  tracker_->finish(at(1000));
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_.front(), "copies-1",
                 Want{.verdict = VerdictKind::unanswered, .challenges = 0, .final_status = 0, .method = "INVITE"});

  // sipwitness's own 407 (sent, local) is a challenge.
  start(TrackerSettings{});
  Req own{.method = "INVITE", .call_id = "copies-2"};
  from_phone(own, at(0));
  from_sipwitness(407, own, at(100), challenge(Chal{.header = "Proxy-Authenticate", .realm = std::string(kOwnRealm)}));
  tracker_->finish(at(1000));
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_.front(), "copies-2",
                 Want{.verdict = VerdictKind::no_credentials, .challenges = 1, .final_status = 407, .method = "INVITE"});
  expect_evidence(verdicts_.front(), "challenged_by", S("sipwitness"));
}

// ---- time: tick and finish --------------------------------------------------

TEST_F(DiagFlow, ChallengeThenSilenceIsNoCredentialsAtTheTimeout) {
  Req r{.call_id = "silent-1"};
  from_phone(r, at(0));
  from_upstream(401, r, at(100), challenge(Chal{}));
  tracker_->tick(at(100) + 31999ms);
  EXPECT_TRUE(verdicts_.empty());
  EXPECT_EQ(tracker_->live_flows(), 1u);
  tracker_->tick(at(100) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_.front();
  expect_verdict(v, "silent-1", Want{.verdict = VerdictKind::no_credentials, .challenges = 1, .final_status = 401});
  expect_evidence(v, "challenged_by", S("upstream"));
  EXPECT_EQ(v.ts, at(100) + 32s);
  EXPECT_EQ(tracker_->live_flows(), 0u);
  tracker_->tick(at(100) + 100s);
  EXPECT_EQ(verdicts_.size(), 1u);
}

TEST_F(DiagFlow, NoResponseIsUnansweredAfterTwiceTheTimeout) {
  for (auto timeout : {32s, 5s}) {
    SCOPED_TRACE(timeout.count());
    TrackerSettings s;
    s.flow_timeout = timeout;
    start(s);
    Req r{.method = "INVITE", .call_id = "mute-1"};
    from_phone(r, at(0));
    feed(Direction::received, Leg::upstream, at(0), kUpstream, response(100, r));  // 1xx is not an answer
    tracker_->tick(at(0) + timeout);
    tracker_->tick(at(0) + 2 * timeout - 1ms);
    EXPECT_TRUE(verdicts_.empty());
    tracker_->tick(at(0) + 2 * timeout);
    ASSERT_EQ(verdicts_.size(), 1u);
    expect_verdict(verdicts_.front(), "mute-1",
                   Want{.verdict = VerdictKind::unanswered, .challenges = 0, .final_status = 0, .method = "INVITE"});
    EXPECT_EQ(tracker_->live_flows(), 0u);
  }
}

TEST_F(DiagFlow, ProvisionalResponsesKeepALongRingingCallAlive) {
  Req r{.method = "INVITE", .call_id = "ringing-1"};
  from_phone(r, at(0));
  from_upstream(180, r, at(50'000), "");
  tracker_->tick(at(99'000));  // 99 s after the INVITE, 49 s after the last 180: still ringing
  EXPECT_TRUE(verdicts_.empty());
  from_upstream(200, r, at(100'000), "");
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_.front(), "ringing-1",
                 Want{.verdict = VerdictKind::ok, .challenges = 0, .final_status = 200, .method = "INVITE"});
}

TEST_F(DiagFlow, FinishEndsEveryOpenFlowRegardlessOfTime) {
  Req pending{.call_id = "fin-pending"};
  from_phone(pending, at(0));
  from_upstream(401, pending, at(100), challenge(Chal{}));

  Req mute{.method = "INVITE", .call_id = "fin-mute"};
  from_phone(mute, at(200));

  Req rejected{.call_id = "fin-rejected"};
  from_phone(rejected, at(300));
  from_upstream(401, rejected, at(400), challenge(Chal{}));
  rejected.cseq = 2;
  rejected.auth = credential(Cred{.password = std::string(kWrongPassword)});
  from_phone(rejected, at(500));
  from_upstream(401, rejected, at(600), challenge(Chal{.nonce = "nonce-b"}));

  tracker_->tick(at(2000));
  EXPECT_TRUE(verdicts_.empty());
  tracker_->finish(at(2000));
  ASSERT_EQ(verdicts_.size(), 3u);
  EXPECT_EQ(tracker_->live_flows(), 0u);
  EXPECT_EQ(tracker_->verdicts(), 3u);

  const auto* a = verdict_for("fin-pending");
  ASSERT_NE(a, nullptr);
  expect_verdict(*a, "fin-pending", Want{.verdict = VerdictKind::no_credentials, .challenges = 1, .final_status = 401});
  const auto* b = verdict_for("fin-mute");
  ASSERT_NE(b, nullptr);
  expect_verdict(*b, "fin-mute",
                 Want{.verdict = VerdictKind::unanswered, .challenges = 0, .final_status = 0, .method = "INVITE"});
  const auto* c = verdict_for("fin-rejected");
  ASSERT_NE(c, nullptr);
  expect_verdict(*c, "fin-rejected",
                 Want{.verdict = VerdictKind::wrong_password, .confidence = Confidence::likely, .challenges = 2,
                      .final_status = 401, .user = "1001"});
  for (const auto& v : verdicts_) EXPECT_EQ(v.ts, at(2000)) << v.call_id;
}

// ---- the cause of a rejected answer ------------------------------------------

struct CauseRow {
  const char* name = "";
  std::vector<Chal> first{};  // the challenge(s) of the first 401
  Cred answer{};
  bool stale_after = false;  // the 401 that follows the answer says stale=true
  bool known = false;        // known credentials for 1001 in kRealm (password kPassword)
  int answer_delay_ms = 1000;  // from the first 401 to the answer
  VerdictKind want = VerdictKind::ok;
  Confidence confidence = Confidence::certain;
  std::vector<std::pair<std::string, EvidenceValue>> evidence{};  // must be there, with these values
  std::vector<std::string> absent = {};                         // must not be there
};

TEST_F(DiagFlow, CauseOfARejectedAnswer) {
  const std::vector<CauseRow> rows{
      {.name = "realm mismatch",
       .first = {Chal{}},
       .answer = Cred{.realm = "example.com"},
       .want = VerdictKind::realm_mismatch,
       .confidence = Confidence::certain,
       .evidence = {{"challenge_realm", S("sip.example.com")}, {"credential_realm", S("example.com")}}},
      {.name = "algorithm not offered",
       .first = {Chal{.algorithm = "SHA-256"}},
       .answer = Cred{.algorithm = "MD5"},
       .want = VerdictKind::algorithm_unsupported,
       .confidence = Confidence::certain,
       .evidence = {{"offered_algorithms", L({"SHA-256"})}, {"credential_algorithm", S("MD5")}}},
      {.name = "no algorithm in the answer means MD5",
       .first = {Chal{.algorithm = "SHA-256"}},
       .answer = Cred{.algorithm = ""},
       .want = VerdictKind::algorithm_unsupported,
       .confidence = Confidence::certain,
       .evidence = {{"offered_algorithms", L({"SHA-256"})}, {"credential_algorithm", S("MD5")}}},
      {.name = "all offered algorithms are listed, in order",
       .first = {Chal{.algorithm = "SHA-256"}, Chal{.algorithm = "MD5"}},
       .answer = Cred{.algorithm = "SHA-512-256"},
       .want = VerdictKind::algorithm_unsupported,
       .confidence = Confidence::certain,
       .evidence = {{"offered_algorithms", L({"SHA-256", "MD5"})}, {"credential_algorithm", S("SHA-512-256")}}},
      {.name = "qop auth-int not offered",
       .first = {Chal{.qop = "auth"}},
       .answer = Cred{.qop = "auth-int"},
       .want = VerdictKind::algorithm_unsupported,
       .confidence = Confidence::certain,
       .evidence = {{"offered_algorithms", L({"MD5"})}, {"credential_algorithm", S("MD5")}}},
      {.name = "qop used when none was offered",
       .first = {Chal{.qop = ""}},
       .answer = Cred{.qop = "auth"},
       .want = VerdictKind::algorithm_unsupported,
       .confidence = Confidence::certain,
       .evidence = {{"offered_algorithms", L({"MD5"})}}},
      {.name = "a second offered algorithm is fine: the cause is elsewhere (stale)",
       .first = {Chal{.algorithm = "SHA-256"}, Chal{.algorithm = "MD5"}},
       .answer = Cred{.algorithm = "MD5"},
       .stale_after = true,
       .want = VerdictKind::nonce_expired,
       .confidence = Confidence::certain,
       .evidence = {{"stale", B(true)}}},
      {.name = "stale nonce",
       .first = {Chal{}},
       .answer = Cred{},
       .stale_after = true,
       .want = VerdictKind::nonce_expired,
       .confidence = Confidence::certain,
       .evidence = {{"stale", B(true)}, {"nonce_age_s", N(1.0)}, {"answer_delay_s", N(1.0)}}},
      {.name = "nonce never issued in this flow",
       .first = {Chal{}},
       .answer = Cred{.nonce = "nonce-from-elsewhere"},
       .want = VerdictKind::nonce_expired,
       .confidence = Confidence::likely,
       .evidence = {{"stale", B(false)}, {"answer_delay_s", N(1.0)}},
       .absent = {"nonce_age_s"}},
      {.name = "digest uri differs from the Request-URI",
       .first = {Chal{}},
       .answer = Cred{.uri = "sip:10.0.0.1:5060"},
       .want = VerdictKind::uri_mismatch,
       .confidence = Confidence::likely,
       .evidence = {{"digest_uri", S("sip:10.0.0.1:5060")}, {"request_uri", S("sip:sip.example.com")}}},
      {.name = "consistent answer rejected, password unknown",
       .first = {Chal{}},
       .answer = Cred{.password = std::string(kWrongPassword)},
       .want = VerdictKind::wrong_password,
       .confidence = Confidence::likely,
       .evidence = {}},
      {.name = "auth user differs from the AOR user, password unknown",
       .first = {Chal{}},
       .answer = Cred{.username = "alice"},
       .want = VerdictKind::username_mismatch,
       .confidence = Confidence::likely,
       .evidence = {{"credential_username", S("alice")}, {"aor_user", S("1001")}}},
      {.name = "known password, wrong response",
       .first = {Chal{}},
       .answer = Cred{.password = std::string(kWrongPassword)},
       .known = true,
       .want = VerdictKind::wrong_password,
       .confidence = Confidence::certain,
       .evidence = {}},
      {.name = "known password, wrong response, SHA-256",
       .first = {Chal{.algorithm = "SHA-256"}},
       .answer = Cred{.password = std::string(kWrongPassword), .algorithm = "SHA-256"},
       .known = true,
       .want = VerdictKind::wrong_password,
       .confidence = Confidence::certain,
       .evidence = {}},
      {.name = "one nonce per offered algorithm (RFC 8760): the answer to the second is issued in the flow",
       .first = {Chal{.nonce = "nonce-sha", .algorithm = "SHA-256"}, Chal{.nonce = "nonce-a", .algorithm = "MD5"}},
       .answer = Cred{.password = std::string(kWrongPassword)},
       .known = true,
       .want = VerdictKind::wrong_password,
       .confidence = Confidence::certain,
       .evidence = {},
       .absent = {"nonce_issued_in_flow"}},
      {.name = "known password, response verifies: rejected for another reason",
       .first = {Chal{}},
       .answer = Cred{},
       .known = true,
       .want = VerdictKind::auth_loop,
       .confidence = Confidence::likely,
       .evidence = {{"response_verified", B(true)}}},
      {.name = "known password verifies but the answer came slowly: a lapsed nonce",
       .first = {Chal{}},
       .answer = Cred{},
       .known = true,
       .answer_delay_ms = 3000,
       .want = VerdictKind::nonce_expired,
       .confidence = Confidence::likely,
       .evidence = {{"response_verified", B(true)}}},
      {.name = "known password, MD5-sess computed over raw HA1 bytes: the -sess readings differ",
       .first = {Chal{.algorithm = "MD5-sess"}},
       .answer = Cred{.algorithm = "MD5-sess", .raw_sess = true},
       .known = true,
       .want = VerdictKind::algorithm_unsupported,
       .confidence = Confidence::certain,
       .evidence = {{"response_verified", B(false)}, {"sess_variant", S("raw")}}},
      {.name = "known password, MD5-sess with the wrong password is still a wrong password",
       .first = {Chal{.algorithm = "MD5-sess"}},
       .answer = Cred{.password = std::string(kWrongPassword), .algorithm = "MD5-sess", .raw_sess = true},
       .known = true,
       .want = VerdictKind::wrong_password,
       .confidence = Confidence::certain,
       .evidence = {{"response_verified", B(false)}},
       .absent = {"sess_variant"}},
      {.name = "known password, SHA-256 with qop none verifies",
       .first = {Chal{.algorithm = "SHA-256", .qop = ""}},
       .answer = Cred{.algorithm = "SHA-256", .qop = ""},
       .known = true,
       .want = VerdictKind::auth_loop,
       .confidence = Confidence::likely,
       .evidence = {{"response_verified", B(true)}}},
      {.name = "user unknown to the known store in its realm",
       .first = {Chal{}},
       .answer = Cred{.username = "1009"},
       .known = true,
       .want = VerdictKind::username_mismatch,
       .confidence = Confidence::certain,
       .evidence = {{"credential_username", S("1009")}}},
      // First match wins.
      {.name = "realm mismatch beats algorithm not offered",
       .first = {Chal{.algorithm = "SHA-256"}},
       .answer = Cred{.realm = "example.com", .algorithm = "MD5"},
       .want = VerdictKind::realm_mismatch,
       .confidence = Confidence::certain,
       .evidence = {{"challenge_realm", S("sip.example.com")}, {"credential_realm", S("example.com")}}},
      {.name = "algorithm not offered beats stale",
       .first = {Chal{.algorithm = "SHA-256"}},
       .answer = Cred{.algorithm = "MD5"},
       .stale_after = true,
       .want = VerdictKind::algorithm_unsupported,
       .confidence = Confidence::certain,
       .evidence = {{"credential_algorithm", S("MD5")}}},
      {.name = "stale beats uri mismatch",
       .first = {Chal{}},
       .answer = Cred{.uri = "sip:10.0.0.1:5060"},
       .stale_after = true,
       .want = VerdictKind::nonce_expired,
       .confidence = Confidence::certain,
       .evidence = {{"stale", B(true)}}},
      {.name = "uri mismatch beats a known wrong password",
       .first = {Chal{}},
       .answer = Cred{.password = std::string(kWrongPassword), .uri = "sip:10.0.0.1:5060"},
       .known = true,
       .want = VerdictKind::uri_mismatch,
       .confidence = Confidence::likely,
       .evidence = {{"digest_uri", S("sip:10.0.0.1:5060")}, {"request_uri", S("sip:sip.example.com")}}},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    TrackerSettings s;
    if (row.known) s.known = known_store(kRealm);
    start(s);
    rejected_answer("cause-1", row.first, row.answer, row.stale_after, row.answer_delay_ms);
    ASSERT_EQ(verdicts_.size(), 1u);
    const auto& v = verdicts_.front();
    expect_verdict(v, "cause-1",
                   Want{.verdict = row.want,
                        .confidence = row.confidence,
                        .challenges = 2,
                        .final_status = 401,
                        .user = row.answer.username});
    EXPECT_EQ(v.ts, at(200 + row.answer_delay_ms) + 32s);
    for (const auto& [key, value] : row.evidence) expect_evidence(v, key, value);
    for (const auto& key : row.absent) expect_no_evidence(v, key);
    EXPECT_EQ(tracker_->live_flows(), 0u);
  }
}

TEST_F(DiagFlow, ReusedNonceAgeCountsFromWhenItWasIssued) {
  // 401 (nonce-1) at 1 s; answered at 2 s; 401 (nonce-2) at 3 s; the phone
  // answers with nonce-1 again at 5 s; 401 stale at 6 s; silence.
  Req r{.call_id = "reuse-1"};
  from_phone(r, at(0));
  from_upstream(401, r, at(1000), challenge(Chal{.nonce = "nonce-1"}));
  r.cseq = 2;
  r.auth = credential(Cred{.nonce = "nonce-1"});
  from_phone(r, at(2000));
  from_upstream(401, r, at(3000), challenge(Chal{.nonce = "nonce-2"}));
  r.cseq = 3;
  from_phone(r, at(5000));
  from_upstream(401, r, at(6000), challenge(Chal{.nonce = "nonce-3", .stale = true}));
  tracker_->tick(at(6000) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_.front();
  expect_verdict(v, "reuse-1",
                 Want{.verdict = VerdictKind::nonce_expired, .challenges = 3, .final_status = 401, .user = "1001"});
  expect_evidence(v, "stale", B(true));
  expect_evidence(v, "answer_delay_s", N(2.0));  // from the 401 it answered (3 s) to the answer (5 s)
  expect_evidence(v, "nonce_age_s", N(4.0));     // from nonce-1's issue (1 s) to the answer (5 s)
}

TEST_F(DiagFlow, LoopOfChallengesEndsAtTheLimitWithTheCause) {
  struct Row {
    const char* name;
    bool known;
    std::string password;
    VerdictKind want;
    Confidence confidence;
  };
  const std::vector<Row> rows{
      {"no known credentials: consistent answers rejected", false, std::string(kPassword), VerdictKind::wrong_password,
       Confidence::likely},
      {"known password, wrong", true, std::string(kWrongPassword), VerdictKind::wrong_password, Confidence::certain},
      {"known password verifies: no cause found", true, std::string(kPassword), VerdictKind::auth_loop,
       Confidence::likely},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    TrackerSettings s;
    s.loop_challenges = 3;
    if (row.known) s.known = known_store(kRealm);
    start(s);
    Req r{.call_id = "loop-1"};
    from_phone(r, at(0));
    for (int i = 1; i <= 3; ++i) {
      auto nonce = "nonce-" + std::to_string(i);
      from_upstream(401, r, at(i * 1000 + 100), challenge(Chal{.nonce = nonce}));
      if (i == 3) break;
      EXPECT_TRUE(verdicts_.empty()) << "ended after " << i << " challenges";
      r.cseq = static_cast<std::uint32_t>(i + 1);
      r.auth = credential(Cred{.password = row.password, .nonce = nonce});
      from_phone(r, at((i + 1) * 1000));
    }
    // Ended on the third challenge, without waiting for a tick.
    ASSERT_EQ(verdicts_.size(), 1u);
    const auto& v = verdicts_.front();
    expect_verdict(v, "loop-1",
                   Want{.verdict = row.want,
                        .confidence = row.confidence,
                        .challenges = 3,
                        .final_status = 401,
                        .user = "1001"});
    EXPECT_EQ(v.ts, at(3100));
    if (row.want == VerdictKind::auth_loop) expect_evidence(v, "response_verified", B(true));
    EXPECT_EQ(tracker_->live_flows(), 0u);
  }
}

// ---- tricky flows the issue names ---------------------------------------------

TEST_F(DiagFlow, RegisterRefreshesOnTheSameCallIdAreSeparateFlows) {
  Req r{.call_id = "refresh-1"};
  from_phone(r, at(0));
  from_upstream(401, r, at(100), challenge(Chal{}));
  r.cseq = 2;
  r.auth = credential(Cred{});
  from_phone(r, at(1000));
  from_upstream(200, r, at(1100));
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_[0], "refresh-1",
                 Want{.verdict = VerdictKind::ok_after_challenge, .challenges = 1, .final_status = 200, .user = "1001"});
  // A retransmitted 200 for the ended flow changes nothing.
  from_upstream(200, r, at(1600));
  EXPECT_EQ(verdicts_.size(), 1u);
  EXPECT_EQ(tracker_->live_flows(), 0u);

  // An hour later: the refresh reuses the nonce and is accepted at once.
  r.cseq = 3;
  from_phone(r, at(3600000));
  from_upstream(200, r, at(3600100));
  ASSERT_EQ(verdicts_.size(), 2u);
  expect_verdict(verdicts_[1], "refresh-1",
                 Want{.verdict = VerdictKind::ok, .challenges = 0, .final_status = 200, .user = "1001"});

  // The next refresh's nonce is stale: 401 stale, fresh answer, 200.
  r.cseq = 4;
  from_phone(r, at(7200000));
  from_upstream(401, r, at(7200100), challenge(Chal{.nonce = "nonce-c", .stale = true}));
  r.cseq = 5;
  r.auth = credential(Cred{.nonce = "nonce-c"});
  from_phone(r, at(7200200));
  from_upstream(200, r, at(7200300));
  ASSERT_EQ(verdicts_.size(), 3u);
  expect_verdict(verdicts_[2], "refresh-1",
                 Want{.verdict = VerdictKind::ok_after_challenge, .challenges = 1, .final_status = 200, .user = "1001"});
  EXPECT_EQ(tracker_->verdicts(), 3u);
}

TEST_F(DiagFlow, FlowKeyIsCallIdMethodAndFromTag) {
  Req a{.call_id = "key-1", .from_tag = "tag-a"};
  Req b{.call_id = "key-1", .from_tag = "tag-b"};
  Req c{.method = "INVITE", .call_id = "key-1", .from_tag = "tag-a"};
  from_phone(a, at(0));
  from_phone(b, at(10));
  from_phone(c, at(20));
  EXPECT_EQ(tracker_->live_flows(), 3u);
  from_upstream(401, b, at(30), challenge(Chal{}));
  from_upstream(200, a, at(40));
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_[0], "key-1", Want{.verdict = VerdictKind::ok, .final_status = 200});
  EXPECT_EQ(tracker_->live_flows(), 2u);
  tracker_->finish(at(50));
  ASSERT_EQ(verdicts_.size(), 3u);
  auto method_of = [this](std::string_view m) {
    return std::find_if(verdicts_.begin() + 1, verdicts_.end(), [m](const Verdict& v) { return v.method == m; });
  };
  auto reg = method_of("REGISTER");
  auto inv = method_of("INVITE");
  ASSERT_NE(reg, verdicts_.end());
  ASSERT_NE(inv, verdicts_.end());
  expect_verdict(*reg, "key-1", Want{.verdict = VerdictKind::no_credentials, .challenges = 1, .final_status = 401});
  expect_verdict(*inv, "key-1",
                 Want{.verdict = VerdictKind::unanswered, .final_status = 0, .method = "INVITE"});
}

// For an INVITE the To user is the callee: the caller (From) answering with its
// own name is not a username mismatch; someone else's name is.
TEST_F(DiagFlow, InviteCallerCredentialsAreComparedWithTheCaller) {
  struct Row {
    const char* name;
    std::string username;
    VerdictKind want;
  };
  const std::vector<Row> rows{
      {"caller's own username", "1001", VerdictKind::wrong_password},
      {"a third username", "alice", VerdictKind::username_mismatch},
  };
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    start(TrackerSettings{});
    Req r{.method = "INVITE", .call_id = "call-2002", .request_uri = "sip:2002@sip.example.com",
          .to_uri = "sip:2002@sip.example.com"};
    from_phone(r, at(0));
    from_upstream(401, r, at(100), challenge(Chal{}));
    r.cseq = 2;
    r.auth = credential(Cred{.username = row.username, .password = std::string(kWrongPassword),
                             .uri = "sip:2002@sip.example.com", .method = "INVITE"});
    from_phone(r, at(1100));
    from_upstream(401, r, at(1200), challenge(Chal{.nonce = "nonce-b"}));
    tracker_->tick(at(1200) + 32s);
    ASSERT_EQ(verdicts_.size(), 1u);
    expect_verdict(verdicts_.front(), "call-2002",
                   Want{.verdict = row.want, .confidence = Confidence::likely, .challenges = 2, .final_status = 401,
                        .user = row.username, .method = "INVITE", .aor = "sip:2002@sip.example.com"});
    if (row.want == VerdictKind::username_mismatch)
      expect_evidence(verdicts_.front(), "credential_username", S(row.username));
  }
}

// A UDP retransmission of the same 401 (same nonce, nothing answered between)
// is one challenge, not two.
TEST_F(DiagFlow, RetransmittedChallengeCountsOnce) {
  Req r{.call_id = "retrans-1"};
  from_phone(r, at(0));
  from_upstream(401, r, at(100), challenge(Chal{}));
  from_phone(r, at(500));  // the phone's REGISTER retransmitted
  from_upstream(401, r, at(600), challenge(Chal{}));
  tracker_->tick(at(600) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_.front(), "retrans-1",
                 Want{.verdict = VerdictKind::no_credentials, .challenges = 1, .final_status = 401});
}

// sipwitness challenges REGISTER itself (407, realm lab.example) and the
// provider challenges it too (401, realm sip.example.com): the verdict says
// which challenger rejected the phone.
class DiagFlowTwoChallengers : public DiagFlow {
 protected:
  void SetUp() override {
    TrackerSettings s;
    s.known = known_store(kOwnRealm);  // sipwitness's users
    start(s);
  }
  static std::string own_challenge(std::string nonce) {
    return challenges({Chal{.header = "Proxy-Authenticate", .realm = std::string(kOwnRealm), .nonce = nonce,
                            .algorithm = "SHA-256"},
                       Chal{.header = "Proxy-Authenticate", .realm = std::string(kOwnRealm), .nonce = nonce,
                            .algorithm = "MD5"}});
  }
  static std::string own_answer(std::string password, std::string username = "1001") {
    return credential(Cred{.header = "Proxy-Authorization", .username = std::move(username),
                           .realm = std::string(kOwnRealm), .password = std::move(password), .nonce = "own-1",
                           .algorithm = "SHA-256"});
  }
  // r challenged by sipwitness (nonce own-1); its retry (CSeq 2) carries `auth`.
  void challenged_by_sipwitness(Req& r, std::string auth) {
    from_phone(r, at(0));
    from_sipwitness(407, r, at(10), own_challenge("own-1"));
    r.cseq = 2;
    r.auth = std::move(auth);
  }
  // r passed sipwitness's challenge, then the provider challenged (nonce up-1); CSeq 3 is next.
  void passed_sipwitness_then_challenged_upstream(Req& r) {
    challenged_by_sipwitness(r, own_answer(std::string(kPassword)));
    from_phone(r, at(1000));  // accepted by sipwitness, forwarded
    from_upstream(401, r, at(1100), challenge(Chal{.nonce = "up-1"}));
    r.cseq = 3;
  }
};

TEST_F(DiagFlowTwoChallengers, SipwitnessRejectsTheAnswerToItsOwnChallenge) {
  Req r{.call_id = "two-1"};
  challenged_by_sipwitness(r, own_answer(std::string(kWrongPassword)));
  feed(Direction::received, Leg::phone, at(1000), kPhone, request(r));  // not forwarded: rejected at sipwitness
  from_sipwitness(407, r, at(1010), own_challenge("own-2"));
  tracker_->tick(at(1010) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_.front();
  expect_verdict(v, "two-1",
                 Want{.verdict = VerdictKind::wrong_password, .challenges = 2, .final_status = 407, .user = "1001"});
  expect_evidence(v, "challenged_by", S("sipwitness"));
}

TEST_F(DiagFlowTwoChallengers, UserUnknownToSipwitness) {
  Req r{.call_id = "two-unknown"};
  challenged_by_sipwitness(r, own_answer(std::string(kPassword), "1009"));
  feed(Direction::received, Leg::phone, at(1000), kPhone, request(r));
  from_sipwitness(407, r, at(1010), own_challenge("own-2"));
  tracker_->tick(at(1010) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_.front();
  expect_verdict(v, "two-unknown",
                 Want{.verdict = VerdictKind::username_mismatch, .challenges = 2, .final_status = 407, .user = "1009"});
  expect_evidence(v, "credential_username", S("1009"));
  expect_evidence(v, "challenged_by", S("sipwitness"));
}

TEST_F(DiagFlowTwoChallengers, UpstreamRejectsAfterSipwitnessAccepted) {
  Req r{.call_id = "two-2"};
  passed_sipwitness_then_challenged_upstream(r);
  // Authorization for the provider first (wrong password), then ours (right).
  r.auth = credential(Cred{.password = std::string(kWrongPassword), .nonce = "up-1"}) +
           own_answer(std::string(kPassword));
  from_phone(r, at(2000));
  from_upstream(401, r, at(2100), challenge(Chal{.nonce = "up-2"}));
  tracker_->tick(at(2100) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_.front();
  // Nothing known for the provider's realm: consistent credentials rejected.
  expect_verdict(v, "two-2",
                 Want{.verdict = VerdictKind::wrong_password, .confidence = Confidence::likely, .challenges = 3,
                      .final_status = 401, .user = "1001"});
  expect_evidence(v, "challenged_by", S("upstream"));
}

// The same, with sipwitness's Proxy-Authorization written before the provider's
// Authorization: the answer to the provider's 401 is still the Authorization
// for its realm (both realms were challenged in this flow; the one the answer
// is judged against is the realm of the challenge it answers).
TEST_F(DiagFlowTwoChallengers, HeaderOrderDoesNotChangeWhichCredentialAnswersThe401) {
  Req r{.call_id = "two-2b"};
  passed_sipwitness_then_challenged_upstream(r);
  r.auth = own_answer(std::string(kPassword)) +
           credential(Cred{.password = std::string(kWrongPassword), .nonce = "up-1"});
  from_phone(r, at(2000));
  from_upstream(401, r, at(2100), challenge(Chal{.nonce = "up-2"}));
  tracker_->tick(at(2100) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_.front();
  expect_verdict(v, "two-2b",
                 Want{.verdict = VerdictKind::wrong_password, .confidence = Confidence::likely, .challenges = 3,
                      .final_status = 401, .user = "1001"});
  expect_evidence(v, "challenged_by", S("upstream"));
  expect_evidence(v, "credential_realm", S(std::string(kRealm)));
}

TEST_F(DiagFlowTwoChallengers, BothChallengesPassed) {
  Req r{.call_id = "two-3"};
  passed_sipwitness_then_challenged_upstream(r);
  r.auth = credential(Cred{.nonce = "up-1"}) + own_answer(std::string(kPassword));
  from_phone(r, at(2000));
  from_upstream(200, r, at(2100));
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_verdict(verdicts_.front(), "two-3",
                 Want{.verdict = VerdictKind::ok_after_challenge, .challenges = 2, .final_status = 200, .user = "1001"});
}

// ---- bounds and secrets ---------------------------------------------------------

TEST_F(DiagFlow, LeastRecentlyActiveFlowIsEvictedAtMaxFlows) {
  TrackerSettings s;
  s.max_flows = 3;
  start(s);
  Req a{.call_id = "evict-a"}, b{.call_id = "evict-b"}, c{.call_id = "evict-c"}, d{.call_id = "evict-d"};
  from_phone(a, at(0));
  from_phone(b, at(100));
  from_phone(c, at(200));
  from_upstream(401, a, at(300), challenge(Chal{}));  // a is active again: b is now the oldest
  EXPECT_EQ(tracker_->evictions(), 0u);
  from_phone(d, at(400));
  EXPECT_EQ(tracker_->evictions(), 1u);
  EXPECT_EQ(tracker_->live_flows(), 3u);

  // b is gone: its 200 ends nothing; the others are still followed.
  auto before = verdicts_.size();
  from_upstream(200, b, at(500));
  for (std::size_t i = before; i < verdicts_.size(); ++i)
    EXPECT_FALSE(verdicts_[i].call_id == "evict-b" && verdicts_[i].final_status == 200);
  from_upstream(200, c, at(600));
  const auto* vc = verdict_for("evict-c");
  ASSERT_NE(vc, nullptr);
  expect_verdict(*vc, "evict-c", Want{.verdict = VerdictKind::ok, .final_status = 200});
  verdicts_.clear();
  tracker_->finish(at(700));
  const auto* va = verdict_for("evict-a");
  const auto* vd = verdict_for("evict-d");
  ASSERT_NE(va, nullptr);
  ASSERT_NE(vd, nullptr);
  expect_verdict(*va, "evict-a", Want{.verdict = VerdictKind::no_credentials, .challenges = 1, .final_status = 401});
  expect_verdict(*vd, "evict-d", Want{.verdict = VerdictKind::unanswered, .final_status = 0});
  EXPECT_EQ(verdict_for("evict-b"), nullptr);
  EXPECT_EQ(tracker_->live_flows(), 0u);
}

TEST_F(DiagFlow, VerdictsNeverCarryAFullDigestOrAPassword) {
  struct Row {
    const char* name;
    std::vector<Chal> first;
    Cred answer;
    bool known;
  };
  const std::vector<Row> rows{
      {"wrong password, known", {Chal{}}, Cred{.password = std::string(kWrongPassword)}, true},
      {"wrong password, SHA-256", {Chal{.algorithm = "SHA-256"}},
       Cred{.password = std::string(kWrongPassword), .algorithm = "SHA-256"}, true},
      {"verified response", {Chal{}}, Cred{}, true},
      {"wrong password, unknown", {Chal{}}, Cred{.password = std::string(kWrongPassword)}, false},
      {"uri mismatch", {Chal{}}, Cred{.uri = "sip:10.0.0.1"}, true},
      {"realm mismatch", {Chal{}}, Cred{.realm = "example.com"}, false},
      {"algorithm not offered", {Chal{.algorithm = "SHA-256"}}, Cred{.algorithm = "SHA-512-256"}, false},
  };
  const std::regex long_hex("[0-9a-fA-F]{32}");
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    TrackerSettings s;  // redact is on by default
    ASSERT_TRUE(s.redact);
    if (row.known) s.known = known_store(kRealm);
    start(s);
    rejected_answer("redact-1", row.first, row.answer, false);
    ASSERT_EQ(verdicts_.size(), 1u);
    const auto digest = digest_of(row.answer);
    const auto ha1 = auth::compute_ha1(auth::Algorithm::md5, "1001", kRealm, kPassword);
    for (const auto& line : {to_json_line(verdicts_[0]), to_human_line(verdicts_[0])}) {
      SCOPED_TRACE(line);
      EXPECT_FALSE(std::regex_search(line, long_hex));
      EXPECT_EQ(line.find(digest), std::string::npos);
      EXPECT_EQ(line.find(ha1), std::string::npos);
      EXPECT_EQ(line.find(kPassword), std::string::npos);
      EXPECT_EQ(line.find(kWrongPassword), std::string::npos);
    }
    for (const auto& [key, value] : verdicts_[0].evidence)
      EXPECT_FALSE(std::regex_search(describe(value), long_hex)) << key;
  }
}

// ---- lab seals and single-point ALG hints -------------------------------------

TEST_F(DiagFlow, SealedDigestRewriteIsTheVerdictNotTheWrongPasswordItLooksLike) {
  Req r{.call_id = "lab-1"};
  from_phone(r, at(0));
  from_upstream(401, r, at(100), challenge(Chal{}));
  r.cseq = 2;
  r.auth = credential(Cred{.uri = "sip:203.0.113.1"});  // what the server got: hashed over another uri
  SealCheck seal;
  seal.status = SealCheck::Status::rewritten;
  seal.changes.push_back({"authorization.0", "Authorization", "Digest username=...", "Digest username=..."});
  seal.changes.push_back({"authorization.0.uri", "Authorization uri=", std::string(kRuri), "sip:203.0.113.1"});
  seal.changes.push_back({"via.0", "Via", "SIP/2.0/UDP 10.0.0.2:5060", "SIP/2.0/UDP 203.0.113.1:5060"});
  auto m = parse_ok(request(r));
  tracker_->on_message(Observed{Direction::received, Leg::phone, at(200), "udp", kPhone, m, false, {}, {}, &seal});
  from_upstream(401, r, at(300), challenge(Chal{.nonce = "nonce-b"}));
  tracker_->tick(at(300) + 32s);
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_[0];
  expect_verdict(v, "lab-1", {.verdict = VerdictKind::alg_rewrite, .confidence = Confidence::certain,
                              .challenges = 2, .final_status = 401, .user = "1001"});
  expect_evidence(v, "field", S("Authorization uri="));
  expect_evidence(v, "sent", S(std::string(kRuri)));
  expect_evidence(v, "arrived", S("sip:203.0.113.1"));
  expect_evidence(v, "rewritten_fields", L({"Authorization", "Authorization uri="}));  // not the Via: no auth field
  EXPECT_NE(v.hint.find("not the password"), std::string::npos) << v.hint;
}

TEST_F(DiagFlow, AnIntactSealChangesNothing) {
  Req r{.call_id = "lab-2"};
  SealCheck seal;
  seal.status = SealCheck::Status::intact;
  auto m = parse_ok(request(r));
  tracker_->on_message(Observed{Direction::received, Leg::phone, at(0), "udp", kPhone, m, false, {}, {}, &seal});
  from_upstream(200, r, at(100));
  ASSERT_EQ(verdicts_.size(), 1u);
  EXPECT_EQ(verdicts_[0].verdict, VerdictKind::ok);
  expect_no_evidence(verdicts_[0], "alg_likely");
}

TEST_F(DiagFlow, SinglePointAlgHintsJoinTheVerdictAsLikely) {
  // What the kernel's SIP helper leaves: Via and Contact on the router's public
  // address, the Call-ID still on the phone's private one.
  auto text = request(Req{.call_id = "reg-9@192.168.1.20"});
  for (auto [from, to] : {std::pair<std::string, std::string>{"Via: SIP/2.0/UDP 192.0.2.10:5060", "Via: SIP/2.0/UDP 198.51.100.7:5060"},
                          {"Contact: <sip:1001@192.0.2.10:5060>", "Contact: <sip:1001@198.51.100.7:5060>"}})
    text.replace(text.find(from), from.size(), to);
  feed(Direction::received, Leg::phone, at(0), "198.51.100.7:5060", text);
  feed(Direction::received, Leg::upstream, at(100), kUpstream, response(200, Req{.call_id = "reg-9@192.168.1.20"}));
  ASSERT_EQ(verdicts_.size(), 1u);
  const auto& v = verdicts_[0];
  EXPECT_EQ(v.verdict, VerdictKind::ok);
  expect_evidence(v, "alg_likely", B(true));
  const auto* hints = find_evidence(v, "alg_hints");
  ASSERT_NE(hints, nullptr);
  const auto& list = std::get<std::vector<std::string>>(*hints);
  ASSERT_FALSE(list.empty());
  EXPECT_TRUE(list.front().starts_with("Via: ")) << list.front();
  EXPECT_NE(v.hint.find("SIP ALG likely"), std::string::npos);
}

TEST_F(DiagFlow, NoHintsForOrdinaryNat) {
  Req r{.call_id = "reg-10@192.0.2.10"};
  from_phone(r, at(0));
  from_upstream(200, r, at(100));
  ASSERT_EQ(verdicts_.size(), 1u);
  expect_no_evidence(verdicts_[0], "alg_likely");
}

}  // namespace
}  // namespace sw::diag
