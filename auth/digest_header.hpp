#pragma once
// Parsing of one challenge (WWW-/Proxy-Authenticate) or one credentials value
// (Authorization / Proxy-Authorization): scheme, then auth-params (RFC 7616 3.3,
// RFC 3261 25.1). Pure; views into the header value.
#include <optional>
#include <string_view>
#include <vector>

#include "proxy/sip/result.hpp"

namespace sw::auth {

struct AuthParam {
  std::string_view name;
  std::string_view value;  // without quotes; backslash escapes are kept as written
  bool quoted = false;
};

struct AuthHeader {
  std::string_view scheme;  // "Digest" (any case)
  std::vector<AuthParam> params;
  // The value of a parameter (case-insensitive name), if present.
  std::optional<std::string_view> get(std::string_view name) const;
};

struct AuthLimits {
  std::size_t max_params = 32;
  std::size_t max_value_bytes = 4096;
};

// Rejects unterminated quotes, duplicate parameters, missing '=' and values over
// the limit, each with a reason.
Result<AuthHeader> parse_auth_header(std::string_view value, const AuthLimits& limits = {});

}  // namespace sw::auth
