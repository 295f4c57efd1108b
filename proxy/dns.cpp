#include "proxy/dns.hpp"

#include <algorithm>
#include <cctype>
#include <numeric>

namespace sw::proxy::dns {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool allowed(Transport t, const std::vector<Transport>& usable) {
  return usable.empty() || std::find(usable.begin(), usable.end(), t) != usable.end();
}

std::optional<Transport> naptr_transport(std::string_view service, bool sips) {
  auto s = lower(service);
  if (s == "sips+d2t") return Transport::tls;
  if (sips) return std::nullopt;  // RFC 3263 4.1: a SIPS URI follows SIPS services only
  if (s == "sip+d2u") return Transport::udp;
  if (s == "sip+d2t") return Transport::tcp;
  return std::nullopt;  // SCTP, WebSocket and the rest: we have no listener for them
}

std::string strip_root(std::string name) {
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

}  // namespace

std::vector<SrvQuery> usable_naptr(std::vector<NaptrRecord> records, bool sips, const std::vector<Transport>& usable) {
  std::stable_sort(records.begin(), records.end(), [](const NaptrRecord& a, const NaptrRecord& b) {
    return a.order != b.order ? a.order < b.order : a.preference < b.preference;
  });
  std::vector<SrvQuery> out;
  for (auto& r : records) {
    // Only terminal "s" records lead straight to SRV; RFC 3263 uses no others.
    if (lower(r.flags) != "s") continue;
    auto t = naptr_transport(r.service, sips);
    auto name = strip_root(r.replacement);
    if (!t || !allowed(*t, usable) || name.empty()) continue;
    SrvQuery q{*t, std::move(name)};
    if (std::find(out.begin(), out.end(), q) == out.end()) out.push_back(std::move(q));
  }
  return out;
}

std::string srv_name(Transport transport, bool sips, const std::string& domain) {
  if (sips || transport == Transport::tls) return "_sips._tcp." + domain;
  return (transport == Transport::udp ? "_sip._udp." : "_sip._tcp.") + domain;
}

std::vector<SrvQuery> default_srv_queries(const std::string& domain, bool sips, const std::vector<Transport>& usable) {
  std::vector<SrvQuery> out;
  auto order = sips ? std::vector<Transport>{Transport::tls}
                    : std::vector<Transport>{Transport::udp, Transport::tcp, Transport::tls};
  for (auto t : order)
    if (allowed(t, usable)) out.push_back({t, srv_name(t, sips, domain)});
  return out;
}

std::vector<SrvRecord> order_srv(std::vector<SrvRecord> records,
                                 const std::function<std::uint32_t(std::uint32_t)>& random) {
  std::erase_if(records, [](const SrvRecord& r) { return r.target.empty() || r.target == "."; });
  // Weight-0 records go first within their priority so that a random value
  // of 0 can still pick them (RFC 2782, "Weight").
  std::stable_sort(records.begin(), records.end(), [](const SrvRecord& a, const SrvRecord& b) {
    if (a.priority != b.priority) return a.priority < b.priority;
    return a.weight == 0 && b.weight != 0;
  });
  std::vector<SrvRecord> out;
  out.reserve(records.size());
  auto group = records.begin();
  while (group != records.end()) {
    auto end = std::find_if(group, records.end(), [&](const SrvRecord& r) { return r.priority != group->priority; });
    std::vector<SrvRecord> left(group, end);
    while (!left.empty()) {
      auto sum = std::accumulate(left.begin(), left.end(), std::uint32_t{0},
                                 [](std::uint32_t acc, const SrvRecord& r) { return acc + r.weight; });
      auto pick = std::min(random(sum), sum);  // a random source out of range must not skip everyone
      std::uint32_t running = 0;
      auto chosen = left.begin();
      for (auto it = left.begin(); it != left.end(); ++it) {
        running += it->weight;
        if (running >= pick) {
          chosen = it;
          break;
        }
      }
      out.push_back(std::move(*chosen));
      left.erase(chosen);
    }
    group = end;
  }
  return out;
}

std::string cache_key(const Query& q) {
  std::string key = q.sips ? "sips:" : "sip:";
  key += lower(strip_root(q.host));
  if (q.port) key.append(":").append(std::to_string(*q.port));
  if (q.transport) key.append(";transport=").append(config::to_string(*q.transport));
  // The usable set filters NAPTR and SRV answers, so it is part of the key;
  // in a fixed order so that listener order does not split the cache.
  key += " via ";
  bool first = true;
  for (auto t : {Transport::udp, Transport::tcp, Transport::tls}) {
    if (!allowed(t, q.usable)) continue;
    if (!first) key += ',';
    key += config::to_string(t);
    first = false;
  }
  return key;
}

Plan plan(const Query& q) {
  Plan p;
  // RFC 3263 4.1: with no transport known, SIPS means TLS and SIP means UDP;
  // a proxy with no UDP listener takes TCP rather than a transport it cannot send on.
  if (q.transport)
    p.address_transport = *q.transport;
  else if (q.sips)
    p.address_transport = Transport::tls;
  else if (!allowed(Transport::udp, q.usable) && allowed(Transport::tcp, q.usable))
    p.address_transport = Transport::tcp;
  else
    p.address_transport = Transport::udp;
  p.address_port = q.port ? *q.port : default_port(p.address_transport);
  // A numeric port, or a host that is already an address, leaves nothing to look up but A/AAAA (4.2).
  if (q.port || Address::from_ip(q.host, 0)) {
    p.start = Plan::Start::address;
  } else if (q.transport) {
    p.start = Plan::Start::srv;
    p.srv = {{*q.transport, srv_name(*q.transport, q.sips, strip_root(q.host))}};
  } else {
    p.start = Plan::Start::naptr;
  }
  return p;
}

namespace {

// Past a domain name at `pos` (labels, ending in a zero byte or a compression
// pointer); npos when it runs off the end or uses a reserved label type.
std::size_t skip_name(std::span<const unsigned char> m, std::size_t pos) {
  while (pos < m.size()) {
    unsigned len = m[pos];
    if ((len & 0xC0) == 0xC0) return pos + 2 <= m.size() ? pos + 2 : std::string::npos;
    if ((len & 0xC0) != 0) return std::string::npos;
    if (len == 0) return pos + 1;
    pos += 1 + len;
  }
  return std::string::npos;
}

unsigned be16(std::span<const unsigned char> m, std::size_t pos) { return (unsigned{m[pos]} << 8) | m[pos + 1]; }

}  // namespace

std::optional<std::uint32_t> min_answer_ttl(std::span<const unsigned char> m) {
  constexpr std::size_t kHeader = 12;
  if (m.size() < kHeader) return std::nullopt;
  unsigned questions = be16(m, 4), answers = be16(m, 6);
  std::size_t pos = kHeader;
  for (unsigned i = 0; i < questions; ++i) {
    pos = skip_name(m, pos);
    if (pos == std::string::npos || pos + 4 > m.size()) return std::nullopt;
    pos += 4;  // type, class
  }
  std::optional<std::uint32_t> least;
  for (unsigned i = 0; i < answers; ++i) {
    pos = skip_name(m, pos);
    if (pos == std::string::npos || pos + 10 > m.size()) return std::nullopt;
    std::uint32_t ttl = (std::uint32_t{be16(m, pos + 4)} << 16) | be16(m, pos + 6);
    if (ttl > 0x7fffffff) ttl = 0;  // RFC 2181 8: a TTL with the top bit set means zero
    std::size_t rdlength = be16(m, pos + 8);
    pos += 10 + rdlength;
    if (pos > m.size()) return std::nullopt;
    least = least ? std::min(*least, ttl) : ttl;
  }
  return least;
}

std::chrono::seconds cache_ttl(std::optional<std::uint32_t> min_ttl, bool failed) {
  constexpr std::uint32_t kMin = 5, kMax = 3600;
  if (failed) return std::chrono::seconds(kMin);
  if (!min_ttl) return std::chrono::seconds(60);
  return std::chrono::seconds(std::clamp(*min_ttl, kMin, kMax));
}

}  // namespace sw::proxy::dns
