#pragma once
// Pure routing decisions: where a request or response goes, or what we answer
// here. No sockets: the server turns decisions into sends.
#include <optional>
#include <string>
#include <vector>

#include "proxy/address.hpp"
#include "proxy/bindings.hpp"
#include "proxy/forward.hpp"
#include "proxy/sip/message.hpp"

namespace sw::proxy {

struct Target {
  Transport transport = Transport::udp;
  std::string host;  // IP literal or hostname (resolved by the server)
  std::uint16_t port = 5060;
  std::optional<Flow> flow;  // set when the target is a known flow (phone behind NAT)
  std::uint32_t listener = kAnyListener;  // the socket to send from, when it matters
  std::uint64_t connection = 0;           // the TCP connection to use, when known
  bool upstream = false;  // the configured upstream: RFC 3263 candidates and failover decide the address
};

// RFC 3261 19.1.2 / 18.2.1: transport from the transport param (or sips), host from
// maddr or the host part, port from the URI or the transport's default.
Target target_from_uri(const sip::Uri& uri);
Target target_from_flow(const Flow& flow);

struct Inbound {
  Flow flow;
  bool from_upstream = false;  // arrived from the configured upstream
};

struct RoutingContext {
  const std::vector<LocalEndpoint>& ours;
  const Target& upstream;
  const BindingTable& bindings;
  Clock::time_point now;
  std::string_view local_tag;  // To tag of our own responses for this request
};

struct RequestDecision {
  enum class Kind { forward, reply, absorb } kind = Kind::forward;
  int status = 0;          // reply
  const char* reason = "";  // reply: reason phrase
  const char* detail = "";  // reply: Warning text / log reason
  std::string headers;      // reply: more header lines ("Unsupported: ...\r\n")
  Target target;            // forward
  std::size_t routes_to_pop = 0;
  bool strict_route = false;  // the next Route (after ours) has no lr: RFC 3261 16.6 step 6
  bool record_route = false;
  bool add_path = false;
};

RequestDecision route_request(const sip::Message& request, const Inbound& in, const RoutingContext& ctx,
                              bool record_route, bool add_path);

struct ResponseDecision {
  bool forward = false;
  const char* drop_reason = "";
  Target target;
};

// RFC 3261 16.7 / 18.2.2: pop our Via, send to the next one (received/rport aware).
ResponseDecision route_response(const sip::Message& response, const std::vector<LocalEndpoint>& ours);

bool is_dialog_forming(std::string_view method);

}  // namespace sw::proxy
