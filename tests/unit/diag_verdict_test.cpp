#include "diag/verdict.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

// The verdict log contract (DESIGN.md): one JSON object per line, keys in a
// fixed order, typed evidence; and the human line for the console.
namespace sw::diag {
namespace {

using Clock = std::chrono::system_clock;
using Json = nlohmann::ordered_json;  // keeps the order the line was written in
using namespace std::chrono_literals;

const Clock::time_point kT0 = std::chrono::sys_days{std::chrono::year{2026} / 11 / 21} + 10h;

Verdict sample() {
  Verdict v;
  v.ts = kT0 + 123ms;
  v.call_id = "a84b4c76e66710@pc33.example.com";
  v.method = "REGISTER";
  v.aor = "sip:1001@example.com";
  v.user = "1001";
  v.source = "192.0.2.10:5060";
  v.verdict = VerdictKind::realm_mismatch;
  v.confidence = Confidence::certain;
  v.challenges = 3;
  v.final_status = 401;
  v.evidence = {
      {"challenge_realm", std::string("sip.example.com")},
      {"credential_realm", std::string("example.com")},
      {"stale", false},
      {"answer_delay_s", 2.5},
      {"nonce_age_s", 42LL},
      {"offered_algorithms", std::vector<std::string>{"SHA-256", "MD5"}},
  };
  v.hint = "the phone answers for realm example.com; the server challenges for sip.example.com";
  return v;
}

Json parse_line(const std::string& line) {
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  Json j;
  try {
    j = Json::parse(line);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << line;
  }
  return j;
}

TEST(DiagVerdict, NamesMatchTheDesignTable) {
  const std::vector<std::pair<VerdictKind, std::string_view>> rows{
      {VerdictKind::ok, "ok"},
      {VerdictKind::ok_after_challenge, "ok_after_challenge"},
      {VerdictKind::wrong_password, "wrong_password"},
      {VerdictKind::realm_mismatch, "realm_mismatch"},
      {VerdictKind::username_mismatch, "username_mismatch"},
      {VerdictKind::nonce_expired, "nonce_expired"},
      {VerdictKind::uri_mismatch, "uri_mismatch"},
      {VerdictKind::alg_rewrite, "alg_rewrite"},
      {VerdictKind::algorithm_unsupported, "algorithm_unsupported"},
      {VerdictKind::no_credentials, "no_credentials"},
      {VerdictKind::auth_loop, "auth_loop"},
      {VerdictKind::forbidden, "forbidden"},
      {VerdictKind::unanswered, "unanswered"},
  };
  for (const auto& [kind, name] : rows) {
    SCOPED_TRACE(name);
    EXPECT_EQ(to_string(kind), name);
    auto hint = hint_for(kind);
    EXPECT_FALSE(hint.empty());
    EXPECT_EQ(hint.find('\n'), std::string_view::npos);

    // The kind's name reaches both renderings.
    auto v = sample();
    v.verdict = kind;
    v.hint = std::string(hint);
    auto j = parse_line(to_json_line(v));
    EXPECT_EQ(j.value("verdict", ""), name);
    EXPECT_EQ(j.value("hint", ""), hint);
    EXPECT_NE(to_human_line(v).find(name), std::string::npos);
  }
  EXPECT_EQ(to_string(Confidence::certain), "certain");
  EXPECT_EQ(to_string(Confidence::likely), "likely");
}

TEST(DiagVerdict, JsonLineHasTheContractKeysInOrder) {
  auto line = to_json_line(sample());
  ASSERT_FALSE(line.empty());
  EXPECT_EQ(line.front(), '{');
  EXPECT_EQ(line.back(), '}');
  auto j = parse_line(line);
  ASSERT_TRUE(j.is_object());
  std::vector<std::string> keys;
  for (const auto& item : j.items()) keys.push_back(item.key());
  const std::vector<std::string> want{"ts",        "call_id",    "method",     "aor",          "user",
                                      "source",    "verdict",    "confidence", "challenges",   "final_status",
                                      "evidence",  "hint"};
  EXPECT_EQ(keys, want);
}

TEST(DiagVerdict, JsonValuesAreTyped) {
  auto j = parse_line(to_json_line(sample()));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["ts"], "2026-11-21T10:00:00.123Z");
  EXPECT_EQ(j["call_id"], "a84b4c76e66710@pc33.example.com");
  EXPECT_EQ(j["method"], "REGISTER");
  EXPECT_EQ(j["aor"], "sip:1001@example.com");
  EXPECT_EQ(j["user"], "1001");
  EXPECT_EQ(j["source"], "192.0.2.10:5060");
  EXPECT_EQ(j["verdict"], "realm_mismatch");
  EXPECT_EQ(j["confidence"], "certain");
  ASSERT_TRUE(j["challenges"].is_number_integer());
  EXPECT_EQ(j["challenges"].get<int>(), 3);
  ASSERT_TRUE(j["final_status"].is_number_integer());
  EXPECT_EQ(j["final_status"].get<int>(), 401);
  EXPECT_EQ(j["hint"], "the phone answers for realm example.com; the server challenges for sip.example.com");

  const auto& e = j["evidence"];
  ASSERT_TRUE(e.is_object());
  std::vector<std::string> keys;
  for (const auto& item : e.items()) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"challenge_realm", "credential_realm", "stale", "answer_delay_s",
                                            "nonce_age_s", "offered_algorithms"}));
  ASSERT_TRUE(e["challenge_realm"].is_string());
  EXPECT_EQ(e["challenge_realm"], "sip.example.com");
  ASSERT_TRUE(e["stale"].is_boolean());
  EXPECT_FALSE(e["stale"].get<bool>());
  ASSERT_TRUE(e["answer_delay_s"].is_number_float());
  EXPECT_DOUBLE_EQ(e["answer_delay_s"].get<double>(), 2.5);
  ASSERT_TRUE(e["nonce_age_s"].is_number_integer());
  EXPECT_EQ(e["nonce_age_s"].get<long long>(), 42);
  ASSERT_TRUE(e["offered_algorithms"].is_array());
  EXPECT_EQ(e["offered_algorithms"].get<std::vector<std::string>>(), (std::vector<std::string>{"SHA-256", "MD5"}));
}

TEST(DiagVerdict, EmptyFieldsKeepTheirTypes) {
  Verdict v;
  v.ts = kT0;
  v.call_id = "c1";
  v.method = "INVITE";
  v.verdict = VerdictKind::unanswered;
  v.confidence = Confidence::certain;
  v.hint = std::string(hint_for(VerdictKind::unanswered));
  auto j = parse_line(to_json_line(v));
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["user"], "");
  EXPECT_EQ(j["aor"], "");
  EXPECT_EQ(j["source"], "");
  ASSERT_TRUE(j["evidence"].is_object());
  EXPECT_TRUE(j["evidence"].empty());
  ASSERT_TRUE(j["final_status"].is_number_integer());
  EXPECT_EQ(j["final_status"].get<int>(), 0);
  EXPECT_EQ(j["challenges"].get<int>(), 0);
  EXPECT_EQ(j.size(), 12u);
}

TEST(DiagVerdict, TimestampIsUtcIsoWithMilliseconds) {
  using std::chrono::sys_days;
  using std::chrono::year;
  const std::vector<std::pair<Clock::time_point, std::string>> rows{
      {kT0, "2026-11-21T10:00:00.000Z"},
      {kT0 + 5ms, "2026-11-21T10:00:00.005Z"},
      {kT0 + 123456us, "2026-11-21T10:00:00.123Z"},
      {kT0 + 13h + 59min + 59s + 999ms, "2026-11-21T23:59:59.999Z"},
      {sys_days{year{1999} / 12 / 31} + 23h + 59min + 59s + 10ms, "1999-12-31T23:59:59.010Z"},
      {sys_days{year{2028} / 2 / 29} + 1h + 2min + 3s, "2028-02-29T01:02:03.000Z"},
  };
  for (const auto& [ts, want] : rows) {
    SCOPED_TRACE(want);
    auto v = sample();
    v.ts = ts;
    auto j = parse_line(to_json_line(v));
    EXPECT_EQ(j.value("ts", ""), want);
  }
}

TEST(DiagVerdict, StringsAreEscapedAndTheLineStaysOneLine) {
  auto v = sample();
  v.call_id = std::string("a\"b\\c\x01\x1f\t\n\rd/e") + "\xc3\xbc";  // quote, backslash, controls, ü
  v.aor = "sip:\"quoted\"@example.com";
  v.user = "new\nline";
  v.hint = "two\nlines \"quoted\"";
  v.evidence = {{"digest_uri", std::string("sip:x\"\\\x7f@y")}, {"list", std::vector<std::string>{"a\"", "b\n"}}};
  auto line = to_json_line(v);
  for (char c : line) EXPECT_GE(static_cast<unsigned char>(c), 0x20u) << "raw control byte in " << line;
  auto j = parse_line(line);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["call_id"], v.call_id);
  EXPECT_EQ(j["aor"], v.aor);
  EXPECT_EQ(j["user"], v.user);
  EXPECT_EQ(j["hint"], v.hint);
  EXPECT_EQ(j["evidence"]["digest_uri"], "sip:x\"\\\x7f@y");
  EXPECT_EQ(j["evidence"]["list"].get<std::vector<std::string>>(), (std::vector<std::string>{"a\"", "b\n"}));
  EXPECT_EQ(to_human_line(v).find('\n'), std::string::npos);
}

// Call-IDs and URIs come from the network: bytes that are not UTF-8 must not
// make the line unparsable (beyond DESIGN's letter, but "one JSON object per line").
TEST(DiagVerdict, BytesThatAreNotUtf8StillGiveValidJson) {
  auto v = sample();
  v.call_id = "bad\xff\xfe-utf8";
  v.evidence = {{"digest_uri", std::string("sip:\xc3@x")}};
  auto line = to_json_line(v);
  EXPECT_NO_THROW({ auto j = Json::parse(line); (void)j; }) << line;
}

// The line is written by hand for speed when it can be: it must be the very
// bytes nlohmann writes for the same object (parsed back and dumped again),
// for plain text, every escape, integers, flags and lists alike. The keys and
// their order are checked above.
TEST(DiagVerdict, LineIsByteForByteWhatNlohmannWrites) {
  auto reference = [](const std::string& line) {
    return Json::parse(line).dump(-1, ' ', false, Json::error_handler_t::replace);
  };
  std::vector<Verdict> cases;
  cases.push_back(sample());  // with a decimal: nlohmann's path
  auto plain = sample();
  plain.evidence.erase(plain.evidence.begin() + 3);  // no decimal: the hand-written path
  cases.push_back(plain);
  auto escapes = plain;
  escapes.call_id = std::string("a\"b\\c\x01\x1f\t\n\r\b\f\x7f/e");
  escapes.evidence.push_back({"list", std::vector<std::string>{"a\"", "b\n", ""}});
  escapes.evidence.push_back({"negative", -7LL});
  escapes.evidence.push_back({"flag", true});
  cases.push_back(escapes);
  auto empty = Verdict{};
  empty.ts = kT0 - std::chrono::hours(24 * 365 * 60) + 7ms;  // before 1970
  cases.push_back(empty);
  auto utf8 = plain;
  utf8.user = "m\xc3\xbcller";  // not ASCII: nlohmann's path
  cases.push_back(utf8);
  for (const auto& v : cases) {
    auto line = to_json_line(v);
    EXPECT_EQ(line, reference(line));
  }
  EXPECT_EQ(iso8601_utc(kT0 + 5ms), "2026-11-21T10:00:00.005Z");
}

TEST(DiagVerdict, HumanLineNamesTheEssentials) {
  auto v = sample();
  v.verdict = VerdictKind::wrong_password;
  v.confidence = Confidence::likely;
  v.hint = std::string(hint_for(VerdictKind::wrong_password));
  auto line = to_human_line(v);
  SCOPED_TRACE(line);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  for (std::string_view part : {std::string_view("wrong_password"), std::string_view("likely"),
                                std::string_view("REGISTER"), std::string_view("sip:1001@example.com"),
                                std::string_view("1001"), std::string_view("192.0.2.10:5060"),
                                std::string_view(v.hint)}) {
    EXPECT_NE(line.find(part), std::string::npos) << "missing: " << part;
  }
}

}  // namespace
}  // namespace sw::diag
