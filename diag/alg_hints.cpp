#include "alg_hints.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "auth/digest.hpp"
#include "auth/digest_header.hpp"
#include "diag/sdp.hpp"
#include "diag/verdict.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"

namespace sw::diag {
namespace {

using sip::HeaderId;

// An IP address as bytes, so that differently written forms compare equal.
struct Ip {
  bool v4 = false;
  std::array<std::uint8_t, 16> b{};  // IPv4 in b[0..3]
  bool operator==(const Ip&) const = default;
};

// An IP literal as SIP writes it (IPv6 possibly in brackets, with a zone);
// nullopt for hostnames and anything malformed.
// IPv4 is a dotted quad as inet_pton reads it: no leading zeros (which some
// parsers read as octal, so such text names no address reliably).
std::optional<Ip> parse_ip(std::string_view s) {
  bool bracketed = s.size() >= 2 && s.front() == '[' && s.back() == ']';
  if (bracketed) s = s.substr(1, s.size() - 2);
  const bool dotted = s.find(':') == std::string_view::npos;
  if (dotted && bracketed) return std::nullopt;  // "[1.2.3.4]" is no host
  if (auto zone = s.find('%'); !dotted && zone != std::string_view::npos) {
    if (zone + 1 == s.size()) return std::nullopt;  // "%" names no zone
    s = s.substr(0, zone);
  }
  Ip ip;
  if (dotted) {
    ip.v4 = true;
    if (!sip::read_ipv4(s, ip.b.data())) return std::nullopt;
    return ip;
  }
  char text[INET6_ADDRSTRLEN] = {};
  if (s.empty() || s.size() >= sizeof text) return std::nullopt;
  s.copy(text, s.size());
  if (inet_pton(AF_INET6, text, ip.b.data()) != 1) return std::nullopt;
  // ::ffff:a.b.c.d is the IPv4 address (dual-stack sockets report peers so).
  static constexpr std::array<std::uint8_t, 12> kMapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::equal(kMapped.begin(), kMapped.end(), ip.b.begin())) {
    Ip v4;
    v4.v4 = true;
    std::copy(ip.b.begin() + 12, ip.b.end(), v4.b.begin());
    return v4;
  }
  return ip;
}

bool private_ip(const Ip& ip) {
  const auto& b = ip.b;
  if (ip.v4)
    return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168) ||
           (b[0] == 100 && (b[1] & 0xc0) == 64) || (b[0] == 169 && b[1] == 254);
  return (b[0] & 0xfe) == 0xfc || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

// Globally routable unicast. Loopback, unspecified, multicast, reserved,
// 192.0.0.0/24 (a 464XLAT phone writes its CLAT address 192.0.0.x) and
// 198.18.0.0/15 are neither public nor private, so they never take part in a
// rule. Documentation ranges count as public: they stand for public addresses
// in examples and tests, and never appear on a real network.
bool public_ip(const Ip& ip) {
  if (private_ip(ip)) return false;
  const auto& b = ip.b;
  if (!ip.v4) return (b[0] & 0xe0) == 0x20;  // 2000::/3
  if (b[0] == 0 || b[0] == 127 || b[0] >= 224) return false;
  if (b[0] == 192 && b[1] == 0 && b[2] == 0) return false;
  if (b[0] == 198 && (b[1] & 0xfe) == 18) return false;
  return true;
}

// NAT, and so an ALG, is an IPv4 matter; a dual-stack phone legitimately writes
// a global IPv6 address next to a private IPv4 or ULA one. The cross-field
// rules therefore compare IPv4 addresses only.
bool public_v4(const std::optional<Ip>& ip) { return ip && ip->v4 && public_ip(*ip); }
bool private_v4(const std::optional<Ip>& ip) { return ip && ip->v4 && private_ip(*ip); }

// An address seen in the message: the text it came from (a header value or an
// SDP line), the address as written, and its bytes.
struct Seen {
  std::string_view value;
  std::string_view addr;
  Ip ip;
};

std::optional<Seen> seen(std::string_view value, std::string_view addr) {
  auto ip = parse_ip(addr);
  if (!ip) return std::nullopt;
  return Seen{value, addr, *ip};
}

bool is_public_v4(const std::optional<Seen>& s) { return s && public_v4(s->ip); }
bool is_private_v4(const std::optional<Seen>& s) { return s && private_v4(s->ip); }

// Up to N whitespace-separated tokens of an SDP value.
template <std::size_t N>
std::array<std::string_view, N> tokens(std::string_view s, std::size_t& count) {
  std::array<std::string_view, N> out{};
  count = 0;
  std::size_t i = 0;
  while (count < N) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    if (i >= s.size()) break;
    std::size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    out[count++] = s.substr(start, i - start);
  }
  return out;
}

// What the SDP says about addresses, first occurrence of each kind (IPv4).
struct Sdp {
  std::optional<Seen> public_c, private_c;  // c= lines (session or media level)
  std::optional<Seen> origin;               // o= of any address
  std::optional<Seen> private_rtcp;         // a=rtcp:PORT IN IP4 addr (RFC 3605)
  std::optional<Seen> private_host_candidate;
  std::vector<Ip> candidates;  // every ICE candidate address, any type
};

Sdp scan_sdp(std::string_view body) {
  Sdp sdp;
  for_each_sdp_line(body, [&](std::string_view line) {
    if (line.size() < 2 || line[1] != '=') return;
    auto value = line.substr(2);
    std::size_t n = 0;
    if (line[0] == 'c') {
      auto t = tokens<3>(value, n);
      if (n < 3 || t[0] != "IN" || t[1] != "IP4") return;
      auto s = seen(value, t[2].substr(0, t[2].find('/')));  // multicast c= carries /ttl
      if (is_public_v4(s) && !sdp.public_c) sdp.public_c = s;
      if (is_private_v4(s) && !sdp.private_c) sdp.private_c = s;
    } else if (line[0] == 'o') {
      auto t = tokens<6>(value, n);
      if (n < 6 || t[3] != "IN" || t[4] != "IP4" || sdp.origin) return;
      sdp.origin = seen(value, t[5]);
    } else if (line[0] == 'a' && value.starts_with("rtcp:")) {
      auto t = tokens<4>(value.substr(5), n);
      if (n < 4 || t[1] != "IN" || t[2] != "IP4") return;
      auto s = seen(value, t[3]);
      if (is_private_v4(s) && !sdp.private_rtcp) sdp.private_rtcp = s;
    } else if (line[0] == 'a' && value.starts_with("candidate:")) {
      // foundation component transport priority address port "typ" type ...
      auto t = tokens<8>(value.substr(10), n);
      if (n < 8 || t[6] != "typ") return;
      auto ip = parse_ip(t[4]);  // mDNS names (x.local) are no address
      if (!ip) return;
      sdp.candidates.push_back(*ip);
      if (t[7] == "host" && private_v4(ip) && !sdp.private_host_candidate)
        sdp.private_host_candidate = Seen{value, t[4], *ip};
    }
  });
  return sdp;
}

// The Call-ID host part when it is an IP literal ("abc@192.168.1.10[:5060]").
std::optional<Seen> call_id_host(const sip::Message& m) {
  auto call_id = m.value(HeaderId::CallId);
  auto at = call_id.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  auto host = call_id.substr(at + 1);
  if (auto s = seen(call_id, host)) return s;
  auto hp = sip::parse_host_port(host);
  if (!hp) return std::nullopt;
  return seen(call_id, hp->host);
}

std::string bounded(std::string_view s) {
  if (s.size() <= kMaxObserved) return printable(std::string(s));
  std::size_t cut = kMaxObserved;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;  // whole UTF-8 sequences
  return printable(std::string(s.substr(0, cut))) + "...";
}

std::string str(std::string_view s) { return std::string(s); }

class Hints {
 public:
  void add(std::string_view rule, std::string_view field, std::string_view observed, std::string evidence) {
    for (const auto& h : out_)
      if (h.rule == rule && h.field == field) return;
    out_.push_back(AlgHint{str(rule), str(field), bounded(observed), printable(std::move(evidence))});
  }
  std::vector<AlgHint> take() { return std::move(out_); }

 private:
  std::vector<AlgHint> out_;
};

// Rule 1. The phone hashes the Request-URI it writes, so the two are equal as
// sent; a private/public split between them means one was rewritten after the
// phone hashed it. Other differences (sip:domain vs sip:ip, an added port) are
// not this rule: the verdict reports them as uri_mismatch.
void digest_uri_rule(const sip::Message& m, Hints& hints) {
  if (!m.first(HeaderId::Authorization) && !m.first(HeaderId::ProxyAuthorization)) return;
  const auto& ruri = m.ruri;
  if (!ruri.is_sip()) return;
  auto ruri_ip = parse_ip(ruri.host);
  if (!ruri_ip) return;
  for (const auto& h : m.headers) {
    if (h.id != HeaderId::Authorization && h.id != HeaderId::ProxyAuthorization) continue;
    auto creds = auth::parse_auth_header(h.value);
    if (!creds || !sip::iequals(creds->scheme, "Digest")) continue;
    auto quoted = creds->get("uri");
    if (!quoted) continue;
    auto text = auth::unquote(*quoted);
    auto uri = sip::parse_uri(text);
    if (!uri || !uri->is_sip()) continue;
    auto ip = parse_ip(uri->host);
    if (!ip || ip->v4 != ruri_ip->v4 || *ip == *ruri_ip) continue;
    if (!sip::iequals(uri->scheme, ruri.scheme) || uri->user != ruri.user || uri->params != ruri.params ||
        uri->headers != ruri.headers)
      continue;
    std::string header(sip::header_name(h.id));
    if (public_ip(*ruri_ip) && private_ip(*ip)) {
      hints.add("digest_uri_differs", "Request-URI", m.request_uri,
                "the Request-URI names public " + str(ruri.host) + " where the " + header + " uri= names private " +
                    str(uri->host) + ": rewritten after the phone hashed it");
    } else if (private_ip(*ruri_ip) && public_ip(*ip)) {
      hints.add("digest_uri_differs", header + " uri=", text,
                "the " + header + " uri= names public " + str(uri->host) + " where the Request-URI names private " +
                    str(ruri.host) + ": rewritten after the phone hashed it");
    }
  }
}

}  // namespace

bool is_private_address(std::string_view ip) {
  auto parsed = parse_ip(ip);
  return parsed && private_ip(*parsed);
}

std::vector<AlgHint> single_point_alg_hints(const sip::Message& m, std::string_view source_ip) {
  Hints hints;

  // Top Via: the sender's own only in requests (a response's top Via is the
  // one sipwitness or the upstream wrote). A second Via means a proxy relayed
  // the request: the top Via and the source are the proxy's, and it may have
  // fixed up NATed addresses itself (nathelper, an SBC), which looks the same.
  std::optional<sip::Via> via;
  std::optional<Ip> via_ip;
  if (m.is_request) {
    if (!m.second_via_element.empty()) return {};
    via = m.via;
    via_ip = parse_ip(via->host);
  }
  std::optional<Ip> source;
  if (auto s = parse_ip(source_ip); s && public_ip(*s)) source = s;  // a private source: no NAT in between

  // Only a request that starts a dialog carries a Call-ID the phone made; in
  // a dialog the other side may have made it (an incoming call's Call-ID can
  // name the provider's private network).
  bool out_of_dialog = m.is_request && m.to_tag.empty();
  std::optional<Seen> call_id = out_of_dialog ? call_id_host(m) : std::nullopt;
  if (!is_private_v4(call_id)) call_id.reset();

  // Contacts matter to rule 2 (with a private Call-ID) and rule 4 (out of
  // dialog, behind a public Via or source): most messages need neither.
  const bool rule4_applies = out_of_dialog && (public_v4(via_ip) || source);
  std::optional<Seen> public_contact, private_contact;
  for (const auto& h : m.headers) {
    if (h.id != HeaderId::Contact || !(call_id || rule4_applies)) continue;
    sip::for_each_list_item(h.value, [&](std::string_view item) {
      auto na = sip::parse_name_addr(item);
      if (!na) return true;
      auto s = seen(item, na->uri.host);
      if (is_public_v4(s) && !public_contact) public_contact = s;
      if (is_private_v4(s) && !private_contact) private_contact = s;
      return true;
    });
  }

  Sdp sdp;
  if (has_sdp_body(m)) sdp = scan_sdp(m.body);
  // A c= that is one of the phone's own ICE candidates (srflx, relay) is an
  // address the phone learned itself, not one a router wrote in.
  bool c_learned = sdp.public_c && std::find(sdp.candidates.begin(), sdp.candidates.end(), sdp.public_c->ip) !=
                                       sdp.candidates.end();

  if (m.is_request) digest_uri_rule(m, hints);

  // Rule 2: an address an ALG rewrites is public while one it leaves alone
  // still names the LAN. A phone using STUN can look the same, hence "likely".
  if (call_id) {
    // Built only when a hint is given: phones behind NAT name private Call-IDs all day.
    auto was = [&] { return "; the Call-ID still names private " + str(call_id->addr); };
    if (via && public_v4(via_ip))
      hints.add("public_via_private_callid", "Via", sip::top_via(m),
                "Via sent-by " + str(via->host) + " is public" + was());
    if (public_contact)
      hints.add("public_contact_private_callid", "Contact", public_contact->value,
                "Contact host " + str(public_contact->addr) + " is public" + was());
    if (sdp.public_c && !c_learned)
      hints.add("public_sdp_private_callid", "SDP c=", sdp.public_c->value,
                "SDP c= " + str(sdp.public_c->addr) + " is public" + was());
  }
  if (sdp.public_c && !c_learned) {
    const auto& c = *sdp.public_c;
    auto is = "SDP c= " + str(c.addr) + " is public but ";
    if (sdp.private_rtcp)
      hints.add("public_c_private_rtcp", "SDP c=", c.value,
                is + "a=rtcp still names private " + str(sdp.private_rtcp->addr));
    // RFC 8839: the default address (c=) is one of the candidates; it is not,
    // so it was written after the phone gathered them.
    if (sdp.private_host_candidate)
      hints.add("public_c_private_candidate", "SDP c=", c.value,
                is + "no ICE candidate has it and host candidate " + str(sdp.private_host_candidate->addr) +
                    " is private");
    if (is_private_v4(sdp.origin))
      hints.add("public_c_private_o", "SDP c=", c.value, is + "o= still names private " + str(sdp.origin->addr));
  }
  if (is_public_v4(sdp.origin) && !sdp.public_c && sdp.private_c)
    hints.add("public_o_private_c", "SDP o=", sdp.origin->value,
              "SDP o= " + str(sdp.origin->addr) + " is public but c= still names private " + str(sdp.private_c->addr));

  // Rule 3: the sent-by a phone writes is where it sends from. A public sent-by
  // that is not the address the packet came from (received= set by a hop
  // before us, else the source we saw) was written by someone else. IPv4 only:
  // an IPv6 phone sends from temporary addresses it does not write in Via.
  if (via && public_v4(via_ip)) {
    if (!via->received.empty()) {
      auto received = parse_ip(via->received);
      if (received && received->v4 && *received != *via_ip && (public_ip(*received) || private_ip(*received)))
        hints.add("via_sent_by_not_source", "Via", sip::top_via(m),
                  "Via sent-by " + str(via->host) + " is public but received=" + str(via->received));
    } else if (source && source->v4 && *source != *via_ip) {
      hints.add("via_sent_by_not_source", "Via", sip::top_via(m),
                "Via sent-by " + str(via->host) + " is public but the packet came from " + str(source_ip));
    }
  }

  // Rule 4: nf_nat_sip rewrites From and To when they hold the phone's private
  // address and port, and always prints the result as addr:port (the port
  // defaults to 5060 when the phone wrote none). So a From/To naming the NAT's
  // public address (the Via sent-by or the packet source) with an explicit
  // port, in a message that still names the LAN elsewhere, was most likely
  // written by the router. Only out of dialog: inside one, From/To may be the
  // other side's (a provider can put the phone's NAT address in To).
  if (rule4_applies) {
    std::optional<Seen> lan = private_contact;
    if (!lan) lan = call_id;
    if (!lan) lan = sdp.private_c;
    if (!lan && is_private_v4(sdp.origin)) lan = sdp.origin;
    if (!lan) lan = sdp.private_rtcp;
    if (!lan) lan = sdp.private_host_candidate;
    for (auto [id, field] : {std::pair{HeaderId::From, "From"}, std::pair{HeaderId::To, "To"}}) {
      if (!lan) break;
      auto value = m.value(id);
      auto na = sip::parse_name_addr(value);
      if (!na || !na->uri.is_sip() || na->uri.port == 0) continue;
      auto ip = parse_ip(na->uri.host);
      if (!public_v4(ip)) continue;
      bool is_via = public_v4(via_ip) && *ip == *via_ip;
      bool is_source = source && *ip == *source;
      if (!is_via && !is_source) continue;
      hints.add("nat_tuple_in_from_to", field, value,
                std::string(field) + " names " + str(na->uri.host) + ":" + std::to_string(na->uri.port) +
                    ", the " + (is_via ? "Via sent-by" : "packet source") +
                    " address with a port, while the message still names private " + str(lan->addr));
    }
  }
  return hints.take();
}

std::string to_text(const AlgHint& h) { return printable(h.field + ": " + h.observed + " (" + h.evidence + ")"); }

}  // namespace sw::diag
