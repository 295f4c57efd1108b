#pragma once
// Digest authentication math (RFC 2617, RFC 7616, RFC 8760): pure, no I/O.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/digest_header.hpp"
#include "proxy/sip/result.hpp"

namespace sw::auth {

enum class Algorithm : std::uint8_t { md5, md5_sess, sha256, sha256_sess, sha512_256, sha512_256_sess };

// "MD5", "MD5-sess", "SHA-256", "SHA-256-sess", "SHA-512-256", "SHA-512-256-sess"
// (case-insensitive). nullopt for anything else.
std::optional<Algorithm> parse_algorithm(std::string_view name);
std::string_view to_string(Algorithm a);
bool is_sess(Algorithm a);
Algorithm base_of(Algorithm a);  // the non-sess algorithm (its HA1 is H(user:realm:password))

enum class Qop : std::uint8_t { none, auth, auth_int };
std::optional<Qop> parse_qop(std::string_view token);  // "auth" / "auth-int"
std::string_view to_string(Qop q);                     // "" for none

// Lower-case hex of the algorithm's hash (MD5, SHA-256, or the real SHA-512/256).
std::string hash_hex(Algorithm a, std::string_view data);

// H(username:realm:password) with the base algorithm's hash.
std::string compute_ha1(Algorithm a, std::string_view username, std::string_view realm, std::string_view password);

// Implementations disagree on how -sess folds HA1 in: RFC 7616 3.4.2 hashes the
// hex HA1 (H(HA1hex:nonce:cnonce)); some RFC 2617 readings hash its raw bytes.
enum class SessVariant : std::uint8_t { hex, raw };

struct DigestInput {
  Algorithm algorithm = Algorithm::md5;
  std::string_view ha1;  // hex, of the base algorithm (never the -sess HA1)
  std::string_view nonce;
  std::string_view cnonce;  // with qop, or -sess
  std::string_view nc;      // 8 hex digits as sent, with qop
  Qop qop = Qop::none;
  std::string_view method;
  std::string_view uri;   // the digest uri= parameter
  std::string_view body;  // for auth-int
};

// The expected response= (hex). qop none is the RFC 2069 form H(HA1:nonce:HA2).
std::string compute_response(const DigestInput& in, SessVariant variant = SessVariant::hex);

// Constant-time comparison (CRYPTO_memcmp); only the lengths are compared openly.
bool equal_constant_time(std::string_view a, std::string_view b);

// A challenge (WWW-/Proxy-Authenticate, scheme Digest).
struct Challenge {
  std::string realm;
  std::string nonce;
  std::string opaque;
  Algorithm algorithm = Algorithm::md5;
  bool algorithm_given = false;
  std::vector<Qop> qops;  // empty: no qop offered
  bool stale = false;
  bool userhash = false;
  std::vector<std::pair<std::string, std::string>> other;  // unknown parameters, kept
};

// Parses a header value that may hold several challenges ("Digest realm=.., Digest
// realm=.."), skipping other schemes. Errors name what is wrong.
Result<std::vector<Challenge>> parse_challenges(std::string_view value);
std::string format_challenge(const Challenge& c);  // "Digest realm=\"..\", nonce=\"..\", ..."

// Credentials (Authorization / Proxy-Authorization, scheme Digest), as views
// into the header value. Quoted values keep their escapes.
struct Credentials {
  std::string_view username, realm, nonce, uri, response, cnonce, nc, opaque;
  std::optional<Algorithm> algorithm;  // absent in the header: MD5
  std::string_view algorithm_text;     // as sent, for diagnosis of unknown names
  Qop qop = Qop::none;
  bool userhash = false;
};

// Requires username, realm, nonce, uri, response; with qop also cnonce and nc (8
// hex digits). Rejects other schemes, duplicates, unterminated quotes, oversized
// values, unknown algorithm or qop tokens, with a reason.
Result<Credentials> parse_credentials(std::string_view value, const AuthLimits& limits = {});

// Removes RFC 7616 quoted-string escapes ("a\"b" -> a"b); most values have none.
std::string unquote(std::string_view quoted_content);

}  // namespace sw::auth
