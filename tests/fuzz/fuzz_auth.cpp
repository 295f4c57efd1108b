// libFuzzer target: digest header parsing (challenges and credentials), the
// challenger's checks, and challenge formatting round trips.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "auth/digest.hpp"
#include "auth/digest_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace sw::auth;
  std::string_view value(reinterpret_cast<const char*>(data), size);
  (void)parse_auth_header(value);
  if (auto creds = parse_credentials(value)) {
    auto algorithm = creds->algorithm.value_or(Algorithm::md5);
    auto ha1 = compute_ha1(algorithm, unquote(creds->username), unquote(creds->realm), "password");
    // DigestInput holds views: the unquoted values must outlive it.
    auto nonce = unquote(creds->nonce), cnonce = unquote(creds->cnonce), uri = unquote(creds->uri);
    DigestInput in{algorithm, ha1, nonce, cnonce, creds->nc, creds->qop, "REGISTER", uri, ""};
    (void)equal_constant_time(compute_response(in), unquote(creds->response));
    (void)compute_response(in, SessVariant::raw);
  }
  if (auto challenges = parse_challenges(value)) {
    for (const auto& c : *challenges) {
      // What we format we must read back the same.
      auto again = parse_challenges(format_challenge(c));
      if (!again || again->size() != 1 || again->front().realm != c.realm || again->front().nonce != c.nonce)
        __builtin_trap();
    }
  }
  return 0;
}
