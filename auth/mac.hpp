#pragma once
// HMAC-SHA256, base64url and random hex, shared by the nonces, the lab seals,
// the proxy's secrets and the probe.
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

// bytes random bytes as lower-case hex (OpenSSL's generator; std::random_device
// should it ever fail).
std::string random_hex(std::size_t bytes);

}  // namespace sw::auth
