#pragma once
// HMAC-SHA256 and base64url, shared by the stateless nonces and the lab seals.
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace sw::auth {

// HMAC-SHA256(key, parts concatenated): the 32 raw bytes, or "" when OpenSSL fails
// (callers treat that as a mismatch, never as a match).
std::string hmac_sha256(std::string_view key, std::initializer_list<std::string_view> parts);

// RFC 4648 5 without padding: token-safe, so it never needs quoting in SIP.
std::string base64url_encode(std::string_view bytes);
// nullopt on a character outside the alphabet or a length no encoding has.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace sw::auth
