#pragma once
// Single-point ALG hints: signs, visible in one message as sipwitness receives
// it, that a router's SIP helper (Linux nf_nat_sip, a consumer router's ALG)
// rewrote it on the way. Meant for messages received from the phone leg when
// the phones sit straight behind a NAT router and no second sipwitness seals
// the original. Each hint means "ALG likely", never a certainty: a phone that
// learned its public address (STUN) can show some of the same signs.
//
// Every rule pairs an address an ALG rewrites with one, in the same message,
// that it leaves alone. A phone behind plain NAT writes private addresses
// everywhere and a phone on a public address public ones everywhere; neither
// gives a hint, and nor does loopback traffic (neither private nor public here).
// Pure: no I/O, no clock.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/sip/message.hpp"

namespace sw::diag {

struct AlgHint {
  std::string rule;      // stable id, e.g. "digest_uri_differs", "public_contact_private_callid"
  std::string field;     // which header/line looks rewritten: "Request-URI", "Authorization uri=",
                         // "Proxy-Authorization uri=", "Via", "Contact", "SDP c=", "SDP o=", "From", "To"
  std::string observed;  // the value as it arrived (printable, at most kMaxObserved bytes plus "...")
  std::string evidence;  // why it looks rewritten, one short sentence with the values that disagree
};

inline constexpr std::size_t kMaxObserved = 200;

// The hints for one received message (request or response); source_ip is the
// packet's source IP without port ("" when unknown). At most one hint per
// (rule, field). Rules (ids):
//   digest_uri_differs            the digest uri= and the Request-URI differ only in
//                                 the host (and port), one private, the other public
//   public_via_private_callid     top Via sent-by public, Call-ID host private
//   public_contact_private_callid Contact host public, Call-ID host private
//   public_sdp_private_callid     SDP c= public, Call-ID host private
//   public_c_private_rtcp         SDP c= public, a=rtcp address private
//   public_c_private_candidate    SDP c= public and not an ICE candidate, a host candidate private
//   public_c_private_o            SDP c= public, o= private
//   public_o_private_c            SDP o= public, c= private
//   via_sent_by_not_source        top Via sent-by public, but received= (else the packet
//                                 source, when public) is another address
//   nat_tuple_in_from_to          From/To holds the public NAT address with an explicit
//                                 port, while the message still names a private address
// All but the first compare IPv4 addresses only; the Via rules look at requests
// only, and the Call-ID and From/To only in requests outside a dialog (there
// the phone wrote them). Requests relayed by a proxy (more than one Via) give no hints: that proxy
// may have done its own NAT fix-ups, and the top Via and the source are its own.
std::vector<AlgHint> single_point_alg_hints(const sip::Message& m, std::string_view source_ip);

// "Contact: <value> (<evidence>)", for logs and verdict evidence.
std::string to_text(const AlgHint& h);

// RFC 1918, RFC 6598 (100.64/10), link-local 169.254/16, IPv6 ULA fc00::/7 and
// link-local fe80::/10 (an IPv4-mapped IPv6 address counts as its IPv4 one).
// Loopback, "", hostnames and malformed addresses are not private. IPv6 may be
// bracketed as in SIP URIs.
bool is_private_address(std::string_view ip);

}  // namespace sw::diag
