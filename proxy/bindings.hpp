#pragma once
// Registration bindings learned from 2xx responses to REGISTER: which flow a
// registered phone is reachable on, so calls from the upstream reach it behind NAT.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/address.hpp"
#include "proxy/sip/message.hpp"
#include "proxy/sip/uri.hpp"

namespace sw::proxy {

using Clock = std::chrono::steady_clock;

class BindingTable {
 public:
  explicit BindingTable(std::size_t capacity) : capacity_(capacity) {}

  // A REGISTER the proxy forwarded, remembered until its response arrives.
  struct PendingRegister {
    Flow flow;
    std::string aor;                    // To URI
    std::vector<std::string> contacts;  // Contact URIs of the request
    Clock::time_point sent;
  };
  void remember_register(const std::string& branch, const sip::Message& request, const Flow& flow, Clock::time_point now);

  // Applies a final response to a remembered REGISTER, found by the branch of
  // the response's top Via (ours). Returns the number of bindings added or refreshed.
  std::size_t on_register_response(const sip::Message& response, Clock::time_point now);

  // The flow for a Request-URI: by exact contact (user, host, port), then by AOR, then by user.
  std::optional<Flow> lookup(const sip::Uri& request_uri, Clock::time_point now) const;
  std::optional<Flow> lookup_contact(const sip::Uri& request_uri, Clock::time_point now) const;

  void purge(Clock::time_point now);  // drops expired bindings and stale pending REGISTERs
  std::size_t size() const { return by_contact_.size(); }
  std::size_t pending() const { return pending_.size(); }
  std::size_t evictions() const { return evictions_; }

 private:
  struct Binding {
    Flow flow;
    std::string aor_key, user_key;
    Clock::time_point expires;
  };
  std::optional<Flow> find(const std::string& contact_key, Clock::time_point now) const;
  void add(const std::string& contact_key, const std::string& aor_key, const std::string& user_key, const Flow& flow,
           Clock::time_point expires);

  std::size_t capacity_;
  std::size_t evictions_ = 0;
  std::unordered_map<std::string, Binding> by_contact_;
  std::unordered_map<std::string, std::string> aor_to_contact_;
  std::unordered_map<std::string, std::string> user_to_contact_;
  std::unordered_map<std::string, PendingRegister> pending_;
};

// "user@host:port" (host lower-cased, default port filled) for contact matching.
std::string contact_key(const sip::Uri& uri);
std::string aor_key(const sip::Uri& uri);  // "user@host"

}  // namespace sw::proxy
