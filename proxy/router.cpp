#include "router.hpp"

#include "proxy/sip/text.hpp"

namespace sw::proxy {

bool is_dialog_forming(std::string_view method) {
  return method == "INVITE" || method == "SUBSCRIBE" || method == "REFER" || method == "NOTIFY";
}

Target target_from_uri(const sip::Uri& uri) {
  Target t;
  t.transport = uri.is_sips() ? Transport::tls : Transport::udp;
  if (auto tp = config::parse_transport(uri.transport())) t.transport = *tp;
  auto host = uri.maddr().empty() ? uri.host : uri.maddr();
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  t.host = std::string(host);
  t.port = uri.port ? uri.port : default_port(t.transport);
  return t;
}

Target target_from_flow(const Flow& flow) {
  return Target{flow.transport, flow.remote.ip(), flow.remote.port(), flow, flow.listener, flow.connection_id};
}

namespace {

RequestDecision reply(int status, const char* reason, const char* detail) {
  RequestDecision d;
  d.kind = RequestDecision::Kind::reply;
  d.status = status;
  d.reason = reason;
  d.detail = detail;
  return d;
}

// Request-URI schemes relayed to the upstream besides sip/sips: telephone
// numbers (RFC 3966) and service URNs such as urn:service:sos (RFC 5031).
bool is_relayed_scheme(std::string_view scheme) { return sip::iequals(scheme, "tel") || sip::iequals(scheme, "urn"); }

// 16.3 step 5: every option-tag of Proxy-Require, none of which we support.
std::string unsupported_proxy_requirements(const sip::Message& r) {
  std::string tags;
  for (const auto& h : r.headers)
    if (sip::iequals(h.name, "Proxy-Require"))
      sip::for_each_list_item(h.value, [&](std::string_view tag) {
        tags += tags.empty() ? "" : ", ";
        tags += tag;
        return true;
      });
  return tags;
}

RequestDecision absorb(const char* detail) {
  RequestDecision d;
  d.kind = RequestDecision::Kind::absorb;
  d.detail = detail;
  return d;
}

}  // namespace

RequestDecision route_request(const sip::Message& r, const Inbound& in, const RoutingContext& ctx,
                              bool record_route, bool add_path) {
  const bool in_dialog = !r.to_tag.empty();

  // An ACK for a final response we generated ends here (RFC 3261 17.2.1).
  if (r.method == "ACK" && in_dialog && r.to_tag == ctx.local_tag)
    return absorb("ACK for a response of ours");
  // 16.3 step 3 and 4.
  if (const auto* mf = r.first(sip::HeaderId::MaxForwards); mf && mf->value == "0") {
    if (r.method == "ACK") return absorb("ACK with Max-Forwards 0");
    return reply(483, "Too Many Hops", "Max-Forwards reached 0");
  }
  if (is_looped(r, ctx.ours)) {
    if (r.method == "ACK") return absorb("looped ACK");
    return reply(482, "Loop Detected", "request came back with our own Via and branch");
  }
  if (r.method != "ACK" && r.method != "CANCEL") {
    if (auto tags = unsupported_proxy_requirements(r); !tags.empty()) {
      auto d = reply(420, "Bad Extension", "Proxy-Require names extensions this proxy does not support");
      d.headers = "Unsupported: " + tags + "\r\n";
      return d;
    }
  }

  RequestDecision d;
  // 16.4: pop the Route values that name us; their flow tokens say where a
  // phone behind NAT (or the upstream) is reachable.
  auto routes = route_values(r);
  std::optional<Flow> token_flow;
  while (d.routes_to_pop < routes.size()) {
    auto na = sip::parse_name_addr(routes[d.routes_to_pop]);
    if (!na || !na->uri.is_sip() || !is_ours(na->uri.host, na->uri.port, ctx.ours)) break;
    for (auto name : {"swin", "swout"}) {
      auto token = na->uri.param(name);
      if (!token) continue;
      auto flow = parse_flow_token(*token);
      if (flow && !flow->same_peer(in.flow)) token_flow = flow;
    }
    ++d.routes_to_pop;
  }
  d.record_route = record_route && !in_dialog && is_dialog_forming(r.method);
  d.add_path = add_path && r.method == "REGISTER" && !in.from_upstream;

  if (token_flow) {
    d.target = target_from_flow(*token_flow);
    return d;
  }
  if (d.routes_to_pop < routes.size()) {
    auto na = sip::parse_name_addr(routes[d.routes_to_pop]);
    if (!na || !na->uri.is_sip()) return reply(400, "Bad Request", "unusable Route header");
    d.target = target_from_uri(na->uri);
    d.strict_route = !na->uri.param("lr");
    return d;
  }
  const auto& ruri = r.ruri;  // parse refused a malformed one
  if (!ruri.is_sip()) {
    if (!in.from_upstream && is_relayed_scheme(ruri.scheme)) {
      d.target = ctx.upstream;
      return d;
    }
    return reply(416, "Unsupported URI Scheme", "Request-URI scheme is not sip, sips, tel or urn");
  }
  // RFC 4475 3.1.2.11: headers in a Request-URI are for the UA that built
  // the request from the URI, never for the next hop.
  if (!ruri.headers.empty()) return reply(400, "Bad Request", "Request-URI carries headers");
  const bool ruri_is_us = is_ours(ruri.host, ruri.port, ctx.ours);
  // The ACK for a non-2xx final response belongs to the INVITE transaction: it
  // has the INVITE's Request-URI and no route set, and must take the INVITE's
  // path (RFC 3261 17.1.1.3), which the initial-request rules below reproduce.
  const bool ack_of_non_2xx = r.method == "ACK" && routes.empty();
  if (in_dialog && !ruri_is_us && !ack_of_non_2xx) {
    // In-dialog without a Route of ours: the remote target is the Request-URI.
    d.target = target_from_uri(ruri);
    return d;
  }
  // Initial requests, such ACKs, and in-dialog requests whose Request-URI names
  // us (a UA that ignored the route set) are routed by side.
  // Initial request: toward a registered phone when the Request-URI names one
  // (a call from the upstream). From elsewhere only an exact contact counts: the
  // upstream may reach us on a connection of its own we cannot tell from a phone's.
  auto flow = in.from_upstream ? ctx.bindings.lookup(ruri, ctx.now) : ctx.bindings.lookup_contact(ruri, ctx.now);
  if (flow && !flow->same_peer(in.flow)) {
    d.target = target_from_flow(*flow);
    return d;
  }
  if (!in.from_upstream) {
    d.target = ctx.upstream;
    return d;
  }
  if (ruri_is_us) return reply(404, "Not Found", "no registered phone for the Request-URI");
  d.target = target_from_uri(ruri);
  return d;
}

ResponseDecision route_response(const sip::Message& response, const std::vector<LocalEndpoint>& ours) {
  ResponseDecision d;
  const auto* top = &response.via;
  if (sip::top_via(response).empty() || !is_ours(top->host, top->port, ours) ||
      !top->branch.starts_with(kBranchPrefix)) {
    d.drop_reason = "top Via is not ours";
    return d;
  }
  if (response.second_via_element.empty()) {
    d.drop_reason = "no Via left after ours";
    return d;
  }
  const auto* next = &response.second_via;
  auto transport = config::parse_transport(next->transport);
  if (!transport) {
    d.drop_reason = "unknown transport in Via";
    return d;
  }
  d.target.transport = *transport;
  auto host = next->received.empty() ? next->host : next->received;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  // RFC 4475 3.3.10: never answer to a broadcast or multicast address.
  if (auto a = Address::from_ip(host, 0); a && a->is_broadcast_or_multicast()) {
    d.drop_reason = "next Via names a broadcast or multicast address";
    return d;
  }
  d.target.host = std::string(host);
  d.target.port = next->port ? next->port : default_port(*transport);
  if (auto rport = sip::parse_uint<std::uint16_t>(next->rport); rport && *rport) d.target.port = *rport;
  // Our Via says where the request came in: back out of that socket, on that connection.
  // Both read in one pass over the parameters (find_param would scan twice);
  // the first of each counts.
  bool listener_seen = false, connection_seen = false;
  sip::for_each_param(top->params, [&](std::string_view name, std::string_view value) {
    if (!listener_seen && sip::iequals(name, "swl")) {
      listener_seen = true;
      if (auto l = sip::parse_uint<std::uint32_t>(value)) d.target.listener = *l;
    } else if (!connection_seen && sip::iequals(name, "swc")) {
      connection_seen = true;
      if (auto c = sip::parse_uint<std::uint64_t>(value)) d.target.connection = *c;
    }
    return !(listener_seen && connection_seen);
  });
  d.forward = true;
  return d;
}

}  // namespace sw::proxy
