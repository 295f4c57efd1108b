#include "verdict.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>

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
  auto secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];  // sized for any int fields, so the format cannot truncate
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(((ms % 1000) + 1000) % 1000));
  return buf;
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

std::string to_json_line(const Verdict& v) {
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
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
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
