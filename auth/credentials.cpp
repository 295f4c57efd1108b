#include "credentials.hpp"

namespace sw::auth {
namespace {

int slot(Algorithm a) {
  switch (base_of(a)) {
    case Algorithm::sha256: return 1;
    case Algorithm::sha512_256: return 2;
    default: return 0;
  }
}

}  // namespace

CredentialStore::CredentialStore(const std::vector<config::UserRecord>& users, std::string_view default_realm) {
  for (const auto& record : users) {
    User u;
    u.username = record.username;
    u.realm = record.realm.empty() ? std::string(default_realm) : record.realm;
    if (u.realm.empty()) {
      if (record.password.empty()) continue;  // an HA1 is bound to a realm: unusable without one
      u.password = record.password;
      users_.push_back(std::move(u));
      continue;
    }
    for (auto a : {Algorithm::md5, Algorithm::sha256, Algorithm::sha512_256})
      if (!record.password.empty()) u.ha1[slot(a)] = compute_ha1(a, u.username, u.realm, record.password);
    for (const auto& [name, hex] : record.ha1)
      if (auto a = parse_algorithm(name)) u.ha1[slot(*a)] = hex;
    users_.push_back(std::move(u));
  }
}

const CredentialStore::User* CredentialStore::find(std::string_view username, std::string_view realm) const {
  const User* any_realm = nullptr;
  for (const auto& u : users_) {
    if (u.username != username) continue;
    if (u.realm == realm) return &u;
    if (u.realm.empty() && !any_realm) any_realm = &u;
  }
  return any_realm;
}

std::optional<std::string> CredentialStore::ha1(std::string_view username, std::string_view realm,
                                                Algorithm algorithm) const {
  const auto* u = find(username, realm);
  if (!u) return std::nullopt;
  if (u->realm.empty()) return compute_ha1(algorithm, username, realm, u->password);
  return u->ha1[slot(algorithm)];
}

std::optional<std::string> CredentialStore::user_for_hash(std::string_view userhash, std::string_view realm,
                                                          Algorithm algorithm) const {
  for (const auto& u : users_) {
    if (!u.realm.empty() && u.realm != realm) continue;
    auto h = hash_hex(base_of(algorithm), u.username + ":" + std::string(realm));
    if (equal_constant_time(h, userhash)) return u.username;
  }
  return std::nullopt;
}

bool CredentialStore::covers_realm(std::string_view realm) const {
  for (const auto& u : users_)
    if (u.realm == realm) return true;
  return false;
}

}  // namespace sw::auth
