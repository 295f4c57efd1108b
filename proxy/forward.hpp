#pragma once
// Pure forwarding rules (RFC 3261 16.6, 16.7, 16.11; RFC 3581; RFC 3327): what a
// forwarded request or response looks like, as edits over the received bytes.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/address.hpp"
#include "proxy/edit_list.hpp"
#include "proxy/sip/message.hpp"
#include "proxy/sip/uri.hpp"

namespace sw::proxy {

// One of our listening endpoints as written into Via, Record-Route and Path.
struct LocalEndpoint {
  Transport transport = Transport::udp;
  std::string host;  // IPv6 in brackets
  std::uint16_t port = 5060;
  bool operator==(const LocalEndpoint&) const = default;
};

// The branch we put in our Via. Per RFC 3261 16.11 it is a function of the
// request, so retransmissions, CANCEL and the ACK for a non-2xx response get the
// same value: z9hG4bKsw<transaction hash>.<loop hash>. The loop hash covers only
// what a loop keeps constant (From tag, Call-ID, Request-URI, CSeq number, 16.6
// step 8), so a spiral (new Request-URI) is told apart from a loop.
std::string compute_branch(const sip::Message& request);
std::string loop_hash(const sip::Message& request);
constexpr std::string_view kBranchPrefix = "z9hG4bKsw";

// RFC 3261 16.3 step 4: a Via of ours whose loop hash matches this request's.
bool is_looped(const sip::Message& request, const std::vector<LocalEndpoint>& ours);

// Whether host:port (as in a Via sent-by or a Route URI) names one of our endpoints.
bool is_ours(std::string_view host, std::uint16_t port, const std::vector<LocalEndpoint>& ours);

// RFC 3581 / RFC 3261 18.2.1: the sender's top Via with received= (when the
// address differs or rport was asked for) and rport's value filled in; every
// other byte of the element is kept.
std::string via_with_received(std::string_view via_item, const Address& source);
// The same for an element already parsed (a Message's top Via: parse read it).
std::string via_with_received(std::string_view via_item, const sip::Via& via, const Address& source);

struct RequestEdits {
  LocalEndpoint out;                // endpoint the request leaves from
  LocalEndpoint in;                 // endpoint it arrived on
  const Flow* inbound = nullptr;    // the sender's flow
  const Flow* outbound = nullptr;   // the target flow when known (registered phone)
  std::size_t routes_to_pop = 0;    // leading Route values that are ours
  bool strict_route = false;        // the next Route is a strict router (no lr): 16.6 step 6
  bool record_route = false;
  bool add_path = false;
  bool add_content_length = false;  // a datagram going onto a stream: add one if it has none
  bool ask_rport = false;           // RFC 3581: we may be behind a NAT (lab.role inner), answer to our source
  const sip::Header* remove = nullptr;  // our own Proxy-Authorization, answered here (RFC 3261 22.3)
  std::string_view branch;          // our Via's branch when the caller has it; else compute_branch
};

// Builds the request to send: our Via on top, received/rport on the sender's Via,
// Max-Forwards decremented (or added as 70), our Route values popped, Record-Route
// (double when the legs differ) and Path inserted, our own credentials removed.
std::string forward_request(const sip::Message& request, const Address& source, const RequestEdits& how);

// Builds the response to send: our top Via removed.
std::string forward_response(const sip::Message& response);

// The Route values of a request, top first.
std::vector<std::string_view> route_values(const sip::Message& msg);

// Record-Route / Path URI for one of our endpoints with flow tokens.
std::string our_uri(const LocalEndpoint& ep, const Flow* in_flow, const Flow* out_flow);

}  // namespace sw::proxy
