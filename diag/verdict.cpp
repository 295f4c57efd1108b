#include "verdict.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <ctime>

#include "proxy/sip/text.hpp"

namespace sw::diag {

std::string_view to_string(VerdictKind v) {
  switch (v) {
    case VerdictKind::ok: return "ok";
    case VerdictKind::ok_after_challenge: return "ok_after_challenge";
    case VerdictKind::wrong_password: return "wrong_password";
    case VerdictKind::realm_mismatch: return "realm_mismatch";
    case VerdictKind::username_mismatch: return "username_mismatch";
    case VerdictKind::nonce_expired: return "nonce_expired";
    case VerdictKind::uri_mismatch: return "uri_mismatch";
    case VerdictKind::alg_rewrite: return "alg_rewrite";
    case VerdictKind::algorithm_unsupported: return "algorithm_unsupported";
    case VerdictKind::no_credentials: return "no_credentials";
    case VerdictKind::auth_loop: return "auth_loop";
    case VerdictKind::forbidden: return "forbidden";
    case VerdictKind::unanswered: return "unanswered";
  }
  return "ok";
}

std::string_view to_string(Confidence c) { return c == Confidence::certain ? "certain" : "likely"; }

std::string_view hint_for(VerdictKind v) {
  switch (v) {
    case VerdictKind::ok:
      return "No authentication was asked for; nothing to fix.";
    case VerdictKind::ok_after_challenge:
      return "Normal digest exchange: challenged once, then accepted.";
    case VerdictKind::wrong_password:
      return "The server rejected consistent credentials: re-enter the SIP password (not the web or voicemail "
             "password) on the phone, or reset it at the provider.";
    case VerdictKind::realm_mismatch:
      return "The phone answers for a different realm than the server challenged: set the phone's realm or "
             "domain to the challenged realm, or leave it empty so the phone takes it from the challenge.";
    case VerdictKind::username_mismatch:
      return "The auth username is not what the server expects: check the phone's authentication ID / auth "
             "user (often the account number, not the extension or display name).";
    case VerdictKind::nonce_expired:
      return "The phone answered with an expired or unknown nonce: check for a slow client, a clock skew, a "
             "retransmission storm, or a phone that caches nonces across server restarts.";
    case VerdictKind::uri_mismatch:
      return "The digest uri= differs from the Request-URI: something (the phone or a SIP ALG) rewrote one "
             "of them; compare them on both sides of the router.";
    case VerdictKind::alg_rewrite:
      return "A device between phone and server rewrote the credentials: disable the router's SIP ALG.";
    case VerdictKind::algorithm_unsupported:
      return "The phone answered with an algorithm or qop the server did not offer: update the phone, or "
             "offer an algorithm it supports (MD5 for many older phones).";
    case VerdictKind::no_credentials:
      return "The phone was challenged and never answered: it has no password configured for this account, "
             "or it could not use the challenge (unsupported algorithm or realm).";
    case VerdictKind::auth_loop:
      return "The server keeps challenging and no cause was found in the credentials: check the server side "
             "(account disabled, IP restrictions, a proxy re-challenging).";
    case VerdictKind::forbidden:
      return "The server refused after authentication (403): the account may be blocked, disabled, or not "
             "allowed from this address.";
    case VerdictKind::unanswered:
      return "No final response arrived: check that the server is reachable and answers.";
  }
  return "";
}

std::string iso8601_utc(std::chrono::system_clock::time_point t) {
  // Floored, so a time before 1970 (a capture with a broken clock) still reads right.
  auto ms = std::chrono::floor<std::chrono::milliseconds>(t).time_since_epoch().count();
  // The calendar by chrono's arithmetic: gmtime_r takes the time zone lock.
  const auto day = std::chrono::floor<std::chrono::days>(t);
  const std::chrono::year_month_day date{day};
  const std::chrono::hh_mm_ss clock{std::chrono::floor<std::chrono::seconds>(t - day)};
  // By hand rather than snprintf: one timestamp per verdict, on the relay's path.
  char buf[64];
  char* out = buf;
  auto put = [&](long long value, long width) {
    char digits[24];
    auto* end = std::to_chars(digits, digits + sizeof digits, value < 0 ? -value : value).ptr;
    if (value < 0) *out++ = '-';
    for (auto n = end - digits; n < width; ++n) *out++ = '0';
    out = std::copy(digits, end, out);
  };
  put(static_cast<int>(date.year()), 4);
  *out++ = '-';
  put(static_cast<unsigned>(date.month()), 2);
  *out++ = '-';
  put(static_cast<unsigned>(date.day()), 2);
  *out++ = 'T';
  put(clock.hours().count(), 2);
  *out++ = ':';
  put(clock.minutes().count(), 2);
  *out++ = ':';
  put(clock.seconds().count(), 2);
  *out++ = '.';
  put(((ms % 1000) + 1000) % 1000, 3);
  *out++ = 'Z';
  return std::string(buf, out);
}

namespace {

nlohmann::ordered_json to_json(const EvidenceValue& v) {
  return std::visit([](const auto& x) { return nlohmann::ordered_json(x); }, v);
}

}  // namespace

std::string evidence_text(const EvidenceValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return to_json(v).dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

namespace {

// The verdict line without building a JSON document: a verdict is written per
// flow, OPTIONS keep-alives included. Covers ASCII text, integers, flags and
// lists; false for anything else (bytes >= 0x80, decimals), which then goes
// through nlohmann. Escapes exactly as nlohmann's dump does.
bool append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  // The hint and evidence texts are most of a line and rarely need escaping:
  // eight bytes are checked at a time, and a byte at a time only near one that may.
  static constexpr auto kSpecial = [] {
    std::array<bool, 256> t{};
    for (std::size_t u = 0; u < t.size(); ++u) t[u] = u < 0x20 || u >= 0x80 || u == '"' || u == '\\';
    return t;
  }();
  auto plain_word = [](const char* p) {
    constexpr std::uint64_t kOnes = 0x0101010101010101, kHigh = 0x8080808080808080;
    std::uint64_t x;
    std::memcpy(&x, p, sizeof x);
    auto zero_in = [&](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
    auto below_space = (x - 0x20 * kOnes) & ~x & kHigh;
    return ((x & kHigh) | below_space | zero_in(x ^ ('"' * kOnes)) | zero_in(x ^ ('\\' * kOnes))) == 0;
  };
  out += '"';
  std::size_t plain = 0;  // start of the run of bytes copied as they are
  for (std::size_t i = 0; i < text.size(); ++i) {
    while (i + 8 <= text.size() && plain_word(text.data() + i)) i += 8;
    if (i >= text.size()) break;
    char c = text[i];
    auto u = static_cast<unsigned char>(c);
    if (!kSpecial[u]) continue;
    if (u >= 0x80) return false;
    out.append(text.substr(plain, i - plain));
    plain = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[u >> 4];
        out += kHex[u & 0xf];
    }
  }
  out.append(text.substr(plain));
  out += '"';
  return true;
}

bool append_json_value(std::string& out, const EvidenceValue& value) {
  if (const auto* text = std::get_if<std::string>(&value)) return append_json_string(out, *text);
  if (const auto* n = std::get_if<long long>(&value)) {
    sip::append_decimal(out, *n);
    return true;
  }
  if (const auto* flag = std::get_if<bool>(&value)) {
    out += *flag ? "true" : "false";
    return true;
  }
  if (const auto* list = std::get_if<std::vector<std::string>>(&value)) {
    out += '[';
    for (std::size_t i = 0; i < list->size(); ++i) {
      if (i) out += ',';
      if (!append_json_string(out, (*list)[i])) return false;
    }
    out += ']';
    return true;
  }
  return false;  // a decimal: nlohmann's number formatting
}

bool append_json_key(std::string& out, std::string_view key, bool first = false) {
  if (!first) out += ',';
  if (!append_json_string(out, key)) return false;
  out += ':';
  return true;
}

// The line's own keys are fixed ASCII: written with their quotes, comma and
// colon in one append (escaping twelve keys per line cost more than the values).
bool append_json_field(std::string& out, std::string_view quoted_key, std::string_view text) {
  out.append(quoted_key);
  return append_json_string(out, text);
}

bool write_verdict_json(std::string& out, const Verdict& v) {
  if (!append_json_field(out, "{\"ts\":", iso8601_utc(v.ts)) || !append_json_field(out, ",\"call_id\":", v.call_id) ||
      !append_json_field(out, ",\"method\":", v.method) || !append_json_field(out, ",\"aor\":", v.aor) ||
      !append_json_field(out, ",\"user\":", v.user) || !append_json_field(out, ",\"source\":", v.source) ||
      !append_json_field(out, ",\"verdict\":", to_string(v.verdict)) ||
      !append_json_field(out, ",\"confidence\":", to_string(v.confidence)))
    return false;
  out.append(",\"challenges\":");
  sip::append_decimal(out, v.challenges);
  out.append(",\"final_status\":");
  sip::append_decimal(out, v.final_status);
  out.append(",\"evidence\":{");
  for (std::size_t i = 0; i < v.evidence.size(); ++i)
    if (!append_json_key(out, v.evidence[i].first, i == 0) || !append_json_value(out, v.evidence[i].second))
      return false;
  out += '}';
  if (!append_json_field(out, ",\"hint\":", v.hint)) return false;
  out += '}';
  return true;
}

}  // namespace

std::string to_json_line(const Verdict& v) {
  std::string line;
  line.reserve(512);
  append_json_line(line, v);
  return line;
}

void append_json_line(std::string& out, const Verdict& v) {
  const auto start = out.size();
  if (write_verdict_json(out, v)) return;
  out.resize(start);
  nlohmann::ordered_json j;
  j["ts"] = iso8601_utc(v.ts);
  j["call_id"] = v.call_id;
  j["method"] = v.method;
  j["aor"] = v.aor;
  j["user"] = v.user;
  j["source"] = v.source;
  j["verdict"] = to_string(v.verdict);
  j["confidence"] = to_string(v.confidence);
  j["challenges"] = v.challenges;
  j["final_status"] = v.final_status;
  auto& evidence = j["evidence"] = nlohmann::ordered_json::object();
  for (const auto& [key, value] : v.evidence) evidence[key] = to_json(value);
  j["hint"] = v.hint;
  // Replace invalid UTF-8 (a Call-ID is bytes off the wire) instead of throwing.
  out += j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string to_human_line(const Verdict& v) {
  std::string out = "verdict " + std::string(to_string(v.verdict)) + " (" + std::string(to_string(v.confidence)) +
                    ") " + v.method + " " + (v.aor.empty() ? "-" : v.aor) + " user=" + (v.user.empty() ? "-" : v.user) +
                    " from " + v.source + " call-id=" + v.call_id + ": " + std::to_string(v.challenges) +
                    (v.challenges == 1 ? " challenge" : " challenges") + ", final " +
                    (v.final_status ? std::to_string(v.final_status) : std::string("none"));
  for (const auto& [key, value] : v.evidence) out += "; " + key + "=" + evidence_text(value);
  out += " | " + v.hint;
  return printable(std::move(out));
}

std::string printable(std::string text) {
  for (auto& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  return text;
}

}  // namespace sw::diag
