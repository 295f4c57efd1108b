#pragma once
// RFC 3263 server location, the pure half: which NAPTR records to follow, which
// SRV names to ask, in what order to try SRV targets, and the values the
// resolver (proxy/resolver.hpp, c-ares on the loop) and its callers pass around.
// No sockets, no DNS library: everything here is unit-tested with plain data.
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "proxy/address.hpp"

namespace sw::proxy::dns {

struct NaptrRecord {
  std::uint16_t order = 0, preference = 0;
  std::string flags, service, regexp, replacement;
};

struct SrvRecord {
  std::uint16_t priority = 0, weight = 0, port = 0;
  std::string target;
};

struct SrvQuery {
  Transport transport = Transport::udp;
  std::string name;  // e.g. "_sip._udp.example.com"
  bool operator==(const SrvQuery&) const = default;
};

// RFC 3263 4.1: the NAPTR records we can use ("s" flag; SIP+D2U -> udp,
// SIP+D2T -> tcp, SIPS+D2T -> tls; only SIPS+D2T when sips), sorted by order
// then preference, limited to `usable` transports (empty: all), without repeats.
std::vector<SrvQuery> usable_naptr(std::vector<NaptrRecord> records, bool sips, const std::vector<Transport>& usable);

// RFC 3263 4.1, last paragraph: the SRV names to ask when there are no usable
// NAPTR records (sips: _sips._tcp only; else udp, tcp, tls), limited to `usable`.
std::vector<SrvQuery> default_srv_queries(const std::string& domain, bool sips, const std::vector<Transport>& usable);

// The SRV name for one transport: TLS is always "_sips._tcp" (RFC 3263 4.1).
std::string srv_name(Transport transport, bool sips, const std::string& domain);

// RFC 2782 order: by priority, then weighted random selection within a
// priority, weight-0 records first in the running sum so they are picked
// rarely but still picked. `random(n)` returns a uniform integer in [0, n].
// Records whose target is "." (service decidedly not available) are dropped.
std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records,
                                 const std::function<std::uint32_t(std::uint32_t)>& random);

// One place to send to, in RFC 3263 order.
struct Candidate {
  Transport transport = Transport::udp;
  std::string target;  // the SRV target, or the host itself
  Address address;     // with the port to use
};

struct Query {
  std::string host;                    // domain or hostname (IP literals are the caller's business)
  std::optional<std::uint16_t> port;   // explicit port in the URI: A/AAAA only (RFC 3263 4.2)
  std::optional<Transport> transport;  // explicit transport= param: SRV of that transport only, no NAPTR
  bool sips = false;
  std::vector<Transport> usable;       // transports we have listeners for (empty: all)
};

struct Resolution {
  std::vector<Candidate> candidates;  // RFC 3263 order; every address of every target
  std::chrono::seconds ttl{60};       // how long the caller may cache it
  std::string error;                  // "" on success; else why nothing usable was found
  std::string trace;                  // one line: the path taken
};

// A key that tells Queries apart wherever their Resolutions may differ
// (the host compared without case, as DNS does).
std::string cache_key(const Query& q);

// The first step RFC 3263 4 prescribes for a query, and where it ends when
// every earlier step finds nothing.
struct Plan {
  enum class Start : std::uint8_t { naptr, srv, address };
  Start start = Start::naptr;
  std::vector<SrvQuery> srv;            // Start::srv: the names to ask
  Transport address_transport = Transport::udp;  // the A/AAAA step (first, or the fallback)
  std::uint16_t address_port = 5060;
};
Plan plan(const Query& q);

// The smallest TTL among the answer records of a raw DNS response (RFC 1035
// 4.1); nullopt when it has none or cannot be walked.
std::optional<std::uint32_t> min_answer_ttl(std::span<const unsigned char> message);

// How long a Resolution may be cached: the smallest TTL seen, clamped to
// [5 s, 1 h]; 60 s when no record said; 5 s for a failure, so it is retried soon.
std::chrono::seconds cache_ttl(std::optional<std::uint32_t> min_ttl, bool failed);

}  // namespace sw::proxy::dns
