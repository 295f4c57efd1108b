#include "digest_header.hpp"

#include "proxy/sip/text.hpp"

namespace sw::auth {

std::optional<std::string_view> AuthHeader::get(std::string_view name) const {
  for (const auto& p : params)
    if (sip::iequals(p.name, name)) return p.value;
  return std::nullopt;
}

Result<AuthHeader> parse_auth_header(std::string_view value, const AuthLimits& limits) {
  AuthHeader h;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < value.size() && sip::is_ws(value[i])) ++i;
  };
  skip_ws();
  std::size_t start = i;
  while (i < value.size() && sip::is_token_char(value[i])) ++i;
  h.scheme = value.substr(start, i - start);
  if (h.scheme.empty()) return Error{Errc::bad_header, "authentication scheme missing"};
  for (;;) {
    skip_ws();
    if (i >= value.size()) break;
    if (!h.params.empty()) {
      if (value[i] != ',') return Error{Errc::bad_header, "expected ',' between auth parameters"};
      ++i;
      skip_ws();
    }
    start = i;
    while (i < value.size() && sip::is_token_char(value[i])) ++i;
    AuthParam p;
    p.name = value.substr(start, i - start);
    if (p.name.empty()) return Error{Errc::bad_header, "auth parameter name missing"};
    skip_ws();
    if (i >= value.size() || value[i] != '=') return Error{Errc::bad_header, "auth parameter without '='"};
    ++i;
    skip_ws();
    if (i < value.size() && value[i] == '"') {
      start = ++i;
      while (i < value.size() && value[i] != '"') {
        if (value[i] == '\\') ++i;
        ++i;
      }
      if (i >= value.size()) return Error{Errc::bad_header, "unterminated quoted auth parameter"};
      p.value = value.substr(start, i - start);
      p.quoted = true;
      ++i;
    } else {
      start = i;
      while (i < value.size() && value[i] != ',' && !sip::is_ws(value[i])) ++i;
      p.value = value.substr(start, i - start);
    }
    if (p.value.size() > limits.max_value_bytes) return Error{Errc::bad_value, "auth parameter value over limit"};
    if (h.get(p.name)) return Error{Errc::duplicate_header, "auth parameter repeated"};
    if (h.params.size() >= limits.max_params) return Error{Errc::bad_value, "too many auth parameters"};
    h.params.push_back(p);
  }
  return h;
}

}  // namespace sw::auth
