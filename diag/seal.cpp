#include "seal.hpp"

#include <openssl/crypto.h>

#include <algorithm>

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "auth/digest.hpp"
#include "auth/digest_header.hpp"
#include "auth/mac.hpp"
#include "diag/sdp.hpp"
#include "proxy/sip/text.hpp"

namespace sw::diag {
namespace {

constexpr std::size_t kFieldMacBytes = 9;   // 72 bits: a device cannot guess a rewrite that still matches
constexpr std::size_t kSealMacBytes = 12;   // 96 bits over the whole seal
constexpr std::size_t kMaxSealLine = 7000;  // stays under the parser's line limit with room to spare
constexpr std::string_view kAbsent = "(absent)";

struct AuthKind {
  sip::HeaderId id;
  std::string_view prefix;
  std::string_view label;
};
constexpr AuthKind kAuthKinds[] = {
    {sip::HeaderId::Authorization, "authorization", "Authorization"},
    {sip::HeaderId::ProxyAuthorization, "proxy-authorization", "Proxy-Authorization"},
    {sip::HeaderId::WwwAuthenticate, "www-authenticate", "WWW-Authenticate"},
    {sip::HeaderId::ProxyAuthenticate, "proxy-authenticate", "Proxy-Authenticate"},
};

bool is_seal(const sip::Header& h) { return h.id == sip::HeaderId::Other && sip::iequals(h.name, kSealHeader); }

// SDP lines an ALG rewrites (RFC 4566: origin, connection, media; RFC 3605 a=rtcp).
void add_sdp_fields(std::string_view body, std::vector<SealField>& out) {
  std::size_t c = 0, m = 0, rtcp = 0;
  for_each_sdp_line(body, [&](std::string_view line) {
    if (line.starts_with("o=")) out.push_back({"sdp.o", std::string(line)});
    else if (line.starts_with("c=")) out.push_back({"sdp.c." + std::to_string(c++), std::string(line)});
    else if (line.starts_with("m=")) out.push_back({"sdp.m." + std::to_string(m++), std::string(line)});
    else if (line.starts_with("a=rtcp:")) out.push_back({"sdp.rtcp." + std::to_string(rtcp++), std::string(line)});
  });
}

std::string field_mac(std::string_view key, std::string_view id, std::string_view name, std::string_view value) {
  auto full = auth::hmac_sha256(key, {id, "\n", name, "\n", value});
  return auth::base64url_encode(std::string_view(full).substr(0, kFieldMacBytes));
}

std::string seal_mac(std::string_view key, std::string_view signed_text) {
  auto full = auth::hmac_sha256(key, {"sipwitness-seal\n", signed_text});
  return auth::base64url_encode(std::string_view(full).substr(0, kSealMacBytes));
}

std::string seal_text(const std::vector<SealField>& fields, std::string_view key, std::string_view id, bool probe,
                      bool carry_values) {
  std::string text = "v=1;id=" + std::string(id) + (probe ? ";probe=1" : "") + ";f=";
  bool first = true;
  for (const auto& f : fields) {
    if (!first) text += ',';
    first = false;
    text += f.name;
    text += ':';
    text += field_mac(key, id, f.name, f.value);
    if (carry_values && f.value.size() <= (is_auth_field(f.name) ? kCarriedAuthBytes : kCarriedValueBytes)) {
      text += ':';
      text += auth::base64url_encode(f.value);
    }
  }
  return text;
}

struct SentField {
  std::string mac;
  std::optional<std::string> value;
};

}  // namespace

std::vector<SealField> seal_fields(const sip::Message& m) {
  std::vector<SealField> out;
  if (m.is_request) out.push_back({"ruri", std::string(m.request_uri)});
  std::size_t via = 0, contact = 0;
  std::size_t auth_index[std::size(kAuthKinds)] = {};
  for (const auto& h : m.headers) {
    switch (h.id) {
      case sip::HeaderId::Via:
        sip::for_each_list_item(h.value, [&](std::string_view item) {
          out.push_back({"via." + std::to_string(via++), std::string(item)});
          return true;
        });
        break;
      case sip::HeaderId::Contact:
        sip::for_each_list_item(h.value, [&](std::string_view item) {
          out.push_back({"contact." + std::to_string(contact++), std::string(item)});
          return true;
        });
        break;
      case sip::HeaderId::From: out.push_back({"from", std::string(h.value)}); break;
      case sip::HeaderId::To: out.push_back({"to", std::string(h.value)}); break;
      case sip::HeaderId::CallId: out.push_back({"call-id", std::string(h.value)}); break;
      case sip::HeaderId::CSeq: out.push_back({"cseq", std::string(h.value)}); break;
      case sip::HeaderId::ContentLength: out.push_back({"content-length", std::string(h.value)}); break;
      default:
        for (std::size_t k = 0; k < std::size(kAuthKinds); ++k) {
          if (h.id != kAuthKinds[k].id) continue;
          auto name = std::string(kAuthKinds[k].prefix) + "." + std::to_string(auth_index[k]++);
          out.push_back({name, std::string(h.value)});
          // Each digest parameter on its own, so a report says "uri=" rather
          // than "the header"; a header that does not parse is still covered whole.
          if (auto parsed = auth::parse_auth_header(h.value))
            for (const auto& p : parsed->params) out.push_back({name + "." + sip::to_lower(p.name), std::string(p.value)});
        }
        break;
    }
  }
  if (!m.body.empty()) {
    auto digest = auth::hash_hex(auth::Algorithm::sha256, m.body);
    out.push_back({"body", std::to_string(m.body.size()) + " bytes, sha256 " + digest.substr(0, 16)});
    if (has_sdp_body(m)) add_sdp_fields(m.body, out);
  }
  return out;
}

std::string field_label(std::string_view name) {
  auto dot = name.find('.');
  auto head = name.substr(0, dot);
  auto rest = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  // "via.1" is the second Via: the index is shown only past the first.
  auto numbered = [](std::string label, std::string_view index) {
    auto n = sip::parse_uint<unsigned>(index);
    return n && *n > 0 ? label + " #" + std::to_string(*n + 1) : label;
  };
  if (head == "ruri") return "Request-URI";
  if (head == "via") return numbered("Via", rest);
  if (head == "contact") return numbered("Contact", rest);
  if (head == "from") return "From";
  if (head == "to") return "To";
  if (head == "call-id") return "Call-ID";
  if (head == "cseq") return "CSeq";
  if (head == "content-length") return "Content-Length";
  if (head == "body") return "body";
  for (const auto& kind : kAuthKinds) {
    if (head != kind.prefix) continue;
    auto index_end = rest.find('.');
    auto label = numbered(std::string(kind.label), rest.substr(0, index_end));
    if (index_end != std::string_view::npos) label += " " + std::string(rest.substr(index_end + 1)) + "=";
    return label;
  }
  if (head == "sdp") {
    auto kind_end = rest.find('.');
    auto kind = rest.substr(0, kind_end);
    auto index = kind_end == std::string_view::npos ? std::string_view{} : rest.substr(kind_end + 1);
    if (kind == "rtcp") return numbered("SDP a=rtcp", index);
    return numbered("SDP " + std::string(kind) + "=", index);
  }
  return std::string(name);
}

bool is_auth_field(std::string_view name) {
  auto head = name.substr(0, name.find('.'));
  return std::any_of(std::begin(kAuthKinds), std::end(kAuthKinds), [&](const AuthKind& k) { return head == k.prefix; });
}

std::string make_seal(const sip::Message& m, std::string_view key, std::string_view id, bool probe) {
  auto fields = seal_fields(m);
  auto text = seal_text(fields, key, id, probe, true);
  if (text.size() > kMaxSealLine) text = seal_text(fields, key, id, probe, false);  // MACs only
  text += ";mac=" + seal_mac(key, text);
  return std::string(kSealHeader) + ": " + text + "\r\n";
}

std::string add_seal(const sip::Message& m, std::string_view key, std::string_view id, bool probe) {
  std::string out(m.raw.substr(0, m.headers_end));
  out += make_seal(m, key, id, probe);
  out += m.raw.substr(m.headers_end);
  return out;
}

bool SealCheck::auth_changed() const {
  return std::any_of(changes.begin(), changes.end(), [](const FieldChange& c) { return is_auth_field(c.name); });
}

SealCheck check_seal(const sip::Message& m, std::string_view key) {
  SealCheck check;
  for (const auto& h : m.headers) {
    if (is_seal(h)) {
      check.header = &h;
      break;
    }
  }
  if (!check.header) return check;
  check.status = SealCheck::Status::invalid;
  const auto value = check.header->value;
  auto mac_at = value.rfind(";mac=");
  if (mac_at == std::string_view::npos) {
    check.detail = "no mac";
    return check;
  }
  auto signed_text = value.substr(0, mac_at);
  // Read before verifying: a probe whose seal fails (another key) still gets
  // an answer saying so, rather than being relayed.
  check.probe = signed_text.find(";probe=1;") != std::string_view::npos;
  auto expected = seal_mac(key, signed_text);
  auto got = sip::trim(value.substr(mac_at + 5));
  if (expected.empty() || got.size() != expected.size() ||
      CRYPTO_memcmp(got.data(), expected.data(), expected.size()) != 0) {
    check.detail = "the seal's mac does not verify: another lab key, or the device changed the seal";
    return check;
  }
  // Authentic from here on: the text is what a sipwitness with our key wrote.
  std::unordered_map<std::string, SentField> sent;
  std::vector<std::string> sent_order;
  bool version_ok = false;
  std::size_t start = 0;
  while (start <= signed_text.size()) {
    auto end = signed_text.find(';', start);
    auto part = signed_text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    start = end == std::string_view::npos ? signed_text.size() + 1 : end + 1;
    if (part == "v=1") version_ok = true;
    else if (part.starts_with("id=")) check.id = std::string(part.substr(3));
    else if (part.starts_with("f=")) {
      auto list = part.substr(2);
      while (!list.empty()) {
        auto comma = list.find(',');
        auto entry = list.substr(0, comma);
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        auto c1 = entry.find(':');
        if (c1 == std::string_view::npos) continue;
        auto c2 = entry.find(':', c1 + 1);
        SentField f;
        f.mac = std::string(entry.substr(c1 + 1, c2 == std::string_view::npos ? std::string_view::npos : c2 - c1 - 1));
        if (c2 != std::string_view::npos) f.value = auth::base64url_decode(entry.substr(c2 + 1));
        auto name = std::string(entry.substr(0, c1));
        if (sent.emplace(name, std::move(f)).second) sent_order.push_back(name);
      }
    }
  }
  if (!version_ok) {
    check.detail = "unknown seal version";
    return check;
  }
  std::unordered_map<std::string, std::string> arrived;
  auto fields = seal_fields(m);
  for (auto& f : fields) arrived.emplace(f.name, f.value);
  auto printable_sent = [](const SentField& f) { return f.value ? *f.value : std::string("(not carried)"); };
  for (const auto& name : sent_order) {
    const auto& s = sent.at(name);
    auto a = arrived.find(name);
    if (a == arrived.end()) {
      check.changes.push_back({name, field_label(name), printable_sent(s), std::string(kAbsent)});
      continue;
    }
    auto mac = field_mac(key, check.id, name, a->second);
    if (mac.size() != s.mac.size() || CRYPTO_memcmp(mac.data(), s.mac.data(), mac.size()) != 0)
      check.changes.push_back({name, field_label(name), printable_sent(s), a->second});
  }
  for (const auto& f : fields)
    if (!sent.count(f.name)) check.changes.push_back({f.name, field_label(f.name), std::string(kAbsent), f.value});
  check.status = check.changes.empty() ? SealCheck::Status::intact : SealCheck::Status::rewritten;
  return check;
}

std::string strip_seal(const sip::Message& m, const SealCheck& check) {
  if (!check.header) return std::string(m.raw);
  std::string out(m.raw.substr(0, check.header->begin));
  out += m.raw.substr(check.header->end);
  return out;
}

std::string_view to_string(SealCheck::Status s) {
  switch (s) {
    case SealCheck::Status::absent: return "absent";
    case SealCheck::Status::intact: return "intact";
    case SealCheck::Status::rewritten: return "rewritten";
    case SealCheck::Status::invalid: return "invalid";
  }
  return "absent";
}

std::string seal_report_json(const SealCheck& check) {
  nlohmann::json changes = nlohmann::json::array();
  for (const auto& c : check.changes)
    changes.push_back({{"name", c.name}, {"field", c.label}, {"sent", c.sent}, {"arrived", c.arrived}});
  nlohmann::json j{{"seal", to_string(check.status)}, {"id", check.id}, {"detail", check.detail}, {"changes", changes}};
  // Values off the wire may hold any bytes: replace what is not UTF-8 rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<SealCheck> parse_seal_report(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("seal") || !j["seal"].is_string()) return std::nullopt;
  SealCheck check;
  auto status = j["seal"].get<std::string>();
  bool known = false;
  for (auto s : {SealCheck::Status::absent, SealCheck::Status::intact, SealCheck::Status::rewritten,
                 SealCheck::Status::invalid})
    if (status == to_string(s)) {
      check.status = s;
      known = true;
    }
  if (!known) return std::nullopt;
  auto text = [](const nlohmann::json& o, const char* key) {
    return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : std::string();
  };
  check.id = text(j, "id");
  check.detail = text(j, "detail");
  if (j.contains("changes") && j["changes"].is_array())
    for (const auto& c : j["changes"])
      if (c.is_object()) check.changes.push_back({text(c, "name"), text(c, "field"), text(c, "sent"), text(c, "arrived")});
  return check;
}

}  // namespace sw::diag
