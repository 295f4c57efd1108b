#pragma once
// SIP URI, name-addr and Via parsing: enough structure for routing, as views.
#include <cstdint>
#include <optional>
#include <string_view>

#include "result.hpp"

namespace sw::sip {

struct HostPort {
  std::string_view host;  // IPv6 references keep their brackets
  std::uint16_t port = 0;  // 0 when absent
};

// Splits "host[:port]"; validates the host characters and the port range.
Result<HostPort> parse_host_port(std::string_view text);

struct Uri {
  std::string_view scheme;    // "sip", "sips", "tel", ... (as written)
  std::string_view user;      // may be empty
  std::string_view password;  // rarely present
  std::string_view host;      // IPv6 references keep their brackets
  std::uint16_t port = 0;     // 0 when absent
  std::string_view params;    // ";transport=tcp;lr" including the leading ';'
  std::string_view headers;   // after '?', without it

  bool is_sip() const;   // sip or sips
  bool is_sips() const;
  std::optional<std::string_view> param(std::string_view name) const;
  std::string_view transport() const;  // the transport param, or ""
  bool lr() const { return param("lr").has_value(); }
  std::string_view maddr() const;
};

Result<Uri> parse_uri(std::string_view text);

struct NameAddr {
  std::string_view display;   // display name (quotes kept), may be empty
  std::string_view uri_text;  // the URI without < >
  Uri uri;
  std::string_view params;    // header parameters after the URI (";tag=..;expires=..")
};

// Parses name-addr ("Display" <uri>;params) and addr-spec (uri;params, where the
// parameters belong to the header, RFC 3261 20.10).
Result<NameAddr> parse_name_addr(std::string_view text);

struct Via {
  std::string_view transport;  // "UDP", "TCP", "TLS", ...
  std::string_view host;
  std::uint16_t port = 0;      // 0 when absent
  std::string_view sent_by;    // host[:port] as written
  std::string_view params;
  std::string_view branch;
  std::string_view received;
  bool has_rport = false;
  std::string_view rport;      // value; empty when the flag has no value yet
};

// Parses one Via element (after splitting the header value at commas).
Result<Via> parse_via(std::string_view element);

// RFC 3261 magic cookie: branch values from RFC 3261 implementations start with it.
constexpr std::string_view kMagicCookie = "z9hG4bK";

}  // namespace sw::sip
