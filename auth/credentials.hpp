#pragma once
// Users known to sipwitness (its own challenges, and known credentials for the
// diagnosis): HA1 per base algorithm, from a password or given directly.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/digest.hpp"
#include "config/config.hpp"

namespace sw::auth {

class CredentialStore {
 public:
  CredentialStore() = default;
  // default_realm applies to records without a realm; when it is empty too, a
  // record with a password answers for any realm (known credentials for a lab,
  // where the provider's realm may not be known in advance).
  CredentialStore(const std::vector<config::UserRecord>& users, std::string_view default_realm);

  // The HA1 (hex) for this user in this realm under the base of `algorithm`.
  std::optional<std::string> ha1(std::string_view username, std::string_view realm, Algorithm algorithm) const;
  // RFC 7616 userhash: the user whose H(username:realm) is this value.
  std::optional<std::string> user_for_hash(std::string_view userhash, std::string_view realm, Algorithm algorithm) const;
  // Whether the store lists users of exactly this realm (so an absent user is unknown there).
  bool covers_realm(std::string_view realm) const;
  std::size_t size() const { return users_.size(); }

 private:
  struct User {
    std::string username, realm;        // realm "" = any realm
    std::string password;               // kept only for realm "" (HA1 depends on the realm)
    std::optional<std::string> ha1[3];  // by base algorithm: MD5, SHA-256, SHA-512-256
  };
  const User* find(std::string_view username, std::string_view realm) const;
  std::vector<User> users_;
};

}  // namespace sw::auth
