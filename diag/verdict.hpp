#pragma once
// One auth verdict per finished flow (the verdict log contract in DESIGN.md),
// and its two renderings: a JSON line and a human-readable line.
#include <chrono>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace sw::diag {

enum class VerdictKind : std::uint8_t {
  ok,
  ok_after_challenge,
  wrong_password,
  realm_mismatch,
  username_mismatch,
  nonce_expired,
  uri_mismatch,
  alg_rewrite,
  algorithm_unsupported,
  no_credentials,
  auth_loop,
  forbidden,
  unanswered,
};
std::string_view to_string(VerdictKind v);

enum class Confidence : std::uint8_t { certain, likely };
std::string_view to_string(Confidence c);

// Evidence values keep their JSON type: text, integer, decimal seconds, flag, or a list of text.
using EvidenceValue = std::variant<std::string, long long, double, bool, std::vector<std::string>>;

struct Verdict {
  std::chrono::system_clock::time_point ts;  // when the flow ended (event or timeout time)
  std::string call_id;
  std::string method;
  std::string aor;      // To URI
  std::string user;     // the username the client answered with ("" if none)
  std::string source;   // the client's ip:port
  VerdictKind verdict = VerdictKind::ok;
  Confidence confidence = Confidence::certain;
  int challenges = 0;   // 401/407 responses in the flow
  int final_status = 0; // 0 when there was none
  std::vector<std::pair<std::string, EvidenceValue>> evidence;  // stable key names, in order
  std::string hint;     // one sentence a support engineer can act on
};

// The hint for each verdict kind (the seed causes).
std::string_view hint_for(VerdictKind v);

// "2026-11-21T10:00:00.123Z"
std::string iso8601_utc(std::chrono::system_clock::time_point t);
// An evidence value as text: strings as they are, the rest as JSON ("3", "true", "[\"MD5\"]").
std::string evidence_text(const EvidenceValue& v);

// {"ts":"2026-11-21T10:00:00.123Z","call_id":...} (no trailing newline).
std::string to_json_line(const Verdict& v);
// The same line at the end of out: the verdict log's buffer takes it without a copy.
void append_json_line(std::string& out, const Verdict& v);
// Text off the wire made safe for a one-line log or report: control
// characters become '?', so a field can never split or forge a line.
std::string printable(std::string text);

// "verdict wrong_password (likely) REGISTER sip:1001@example.com user=1001 from 192.0.2.10:5060: 3 challenges, final 401; credential_realm=... | hint"
std::string to_human_line(const Verdict& v);

}  // namespace sw::diag
