#include "bindings.hpp"

#include <algorithm>

#include "proxy/sip/text.hpp"

namespace sw::proxy {
namespace {

constexpr auto kPendingLifetime = std::chrono::seconds(64);  // 64*T1: longest a transaction lives
constexpr std::size_t kMaxPending = 65536;
constexpr std::uint32_t kDefaultExpires = 3600;  // RFC 3261 10.2.1.1 when none given

template <class F>
void for_each_contact(const sip::Message& m, F&& f) {
  for (const auto& h : m.headers) {
    if (h.id != sip::HeaderId::Contact) continue;
    sip::for_each_list_item(h.value, [&](std::string_view item) {
      auto na = sip::parse_name_addr(item);
      if (na) f(*na);
      return true;
    });
  }
}

}  // namespace

std::string contact_key(const sip::Uri& uri) {
  auto port = uri.port ? uri.port : (uri.is_sips() ? 5061 : 5060);
  return std::string(uri.user) + "@" + sip::to_lower(uri.host) + ":" + std::to_string(port);
}

std::string aor_key(const sip::Uri& uri) { return std::string(uri.user) + "@" + sip::to_lower(uri.host); }

void BindingTable::remember_register(const std::string& branch, const sip::Message& request, const Flow& flow,
                                     Clock::time_point now) {
  if (pending_.size() >= kMaxPending) purge(now);
  if (pending_.size() >= kMaxPending) return;  // a flood of unanswered REGISTERs: bindings wait
  PendingRegister p{flow, {}, {}, now};
  if (auto to = sip::parse_name_addr(request.value(sip::HeaderId::To))) p.aor = std::string(to->uri_text);
  for_each_contact(request, [&](const sip::NameAddr& na) { p.contacts.emplace_back(na.uri_text); });
  pending_[branch] = std::move(p);
}

std::size_t BindingTable::on_register_response(const sip::Message& response, Clock::time_point now) {
  auto it = pending_.find(std::string(response.via.branch));
  if (it == pending_.end()) return 0;
  auto pending = std::move(it->second);
  pending_.erase(it);
  if (response.status < 200 || response.status >= 300) return 0;
  auto aor = sip::parse_uri(pending.aor);
  if (!aor) return 0;
  std::uint32_t default_expires = kDefaultExpires;
  if (auto e = sip::parse_uint<std::uint32_t>(response.value(sip::HeaderId::Expires))) default_expires = *e;

  std::size_t added = 0;
  // The 2xx lists every binding of the AOR (RFC 3261 10.3 step 8); ours are those
  // this REGISTER carried. Expires 0 or absence from the list removes them.
  for (const auto& sent : pending.contacts) {
    auto sent_uri = sip::parse_uri(sent);
    if (!sent_uri) continue;
    auto key = contact_key(*sent_uri);
    std::optional<std::uint32_t> expires;
    for_each_contact(response, [&](const sip::NameAddr& na) {
      if (contact_key(na.uri) != key) return;
      auto e = sip::find_param(na.params, "expires");
      expires = e ? sip::parse_uint<std::uint32_t>(*e).value_or(default_expires) : default_expires;
    });
    if (!expires || *expires == 0) {
      by_contact_.erase(key);
      continue;
    }
    add(key, aor_key(*aor), std::string(aor->user), pending.flow, now + std::chrono::seconds(*expires));
    ++added;
  }
  return added;
}

void BindingTable::add(const std::string& contact_key, const std::string& aor_key, const std::string& user_key,
                       const Flow& flow, Clock::time_point expires) {
  if (!by_contact_.count(contact_key) && by_contact_.size() >= capacity_) {
    // Full: the binding closest to expiry makes room.
    auto victim = std::min_element(by_contact_.begin(), by_contact_.end(),
                                   [](const auto& a, const auto& b) { return a.second.expires < b.second.expires; });
    by_contact_.erase(victim);
    ++evictions_;
  }
  by_contact_[contact_key] = Binding{flow, aor_key, user_key, expires};
  aor_to_contact_[aor_key] = contact_key;
  user_to_contact_[user_key] = contact_key;
}

std::optional<Flow> BindingTable::find(const std::string& key, Clock::time_point now) const {
  auto it = by_contact_.find(key);
  if (it == by_contact_.end() || it->second.expires <= now) return std::nullopt;
  return it->second.flow;
}

std::optional<Flow> BindingTable::lookup_contact(const sip::Uri& request_uri, Clock::time_point now) const {
  if (request_uri.user.empty()) return std::nullopt;
  return find(contact_key(request_uri), now);
}

std::optional<Flow> BindingTable::lookup(const sip::Uri& request_uri, Clock::time_point now) const {
  if (request_uri.user.empty()) return std::nullopt;
  if (auto f = find(contact_key(request_uri), now)) return f;
  if (auto it = aor_to_contact_.find(aor_key(request_uri)); it != aor_to_contact_.end())
    if (auto f = find(it->second, now)) return f;
  if (auto it = user_to_contact_.find(std::string(request_uri.user)); it != user_to_contact_.end())
    if (auto f = find(it->second, now)) return f;
  return std::nullopt;
}

void BindingTable::purge(Clock::time_point now) {
  std::erase_if(by_contact_, [&](const auto& kv) { return kv.second.expires <= now; });
  std::erase_if(aor_to_contact_, [&](const auto& kv) { return !by_contact_.count(kv.second); });
  std::erase_if(user_to_contact_, [&](const auto& kv) { return !by_contact_.count(kv.second); });
  std::erase_if(pending_, [&](const auto& kv) { return now - kv.second.sent > kPendingLifetime; });
}

}  // namespace sw::proxy
