#include "forward.hpp"

#include "proxy/hash.hpp"
#include "proxy/sip/text.hpp"

namespace sw::proxy {
namespace {

// Offsets of the list items of every header with this id, top first.
struct Item {
  const sip::Header* header;
  std::string_view text;
};
std::vector<Item> list_items(const sip::Message& m, sip::HeaderId id) {
  std::vector<Item> items;
  for (const auto& h : m.headers) {
    if (h.id != id) continue;
    sip::for_each_list_item(h.value, [&](std::string_view item) {
      items.push_back({&h, item});
      return true;
    });
  }
  return items;
}

// Removes the first n items of the headers with this id: a header whose items are
// all removed loses its whole line, otherwise its leading items are cut.
void pop_items(const sip::Message& m, sip::HeaderId id, std::size_t n, EditList& edits) {
  auto items = list_items(m, id);
  std::size_t i = 0;
  while (i < n && i < items.size()) {
    const auto* h = items[i].header;
    std::size_t j = i;
    while (j < n && j < items.size() && items[j].header == h) ++j;
    bool whole_line = j == items.size() || items[j].header != h;
    if (whole_line) {
      edits.erase(h->begin, h->end - h->begin);
    } else {
      auto from = m.offset_of(items[i].text);
      edits.erase(from, m.offset_of(items[j].text) - from);
    }
    i = j;
  }
}

const char* transport_upper(Transport t) {
  switch (t) {
    case Transport::udp: return "UDP";
    case Transport::tcp: return "TCP";
    case Transport::tls: return "TLS";
  }
  return "UDP";
}

Fnv64 loop_fnv(const sip::Message& r) {
  Fnv64 h;
  h.add(r.from_tag)
      .add(r.value(sip::HeaderId::CallId))
      .add(r.request_uri)
      .add(std::uint64_t{r.cseq_number});
  // The route set decides where a request goes next (16.6 step 8): an in-dialog
  // request passing us twice on its Route path is a spiral, not a loop. CANCEL
  // and the ACK for a non-2xx carry the INVITE's Route, so they keep its branch.
  for (const auto& header : r.headers)
    if (header.id == sip::HeaderId::Route) h.add(header.value);
  return h;
}

}  // namespace

std::string loop_hash(const sip::Message& r) { return loop_fnv(r).hex(); }

std::string compute_branch(const sip::Message& r) {
  Fnv64 tx;
  if (r.via.branch.starts_with(sip::kMagicCookie)) {
    // RFC 3261 branches are unique per transaction already; CANCEL and non-2xx ACK reuse them.
    tx.add(r.via.branch).add(r.via.sent_by);
  } else {
    // RFC 2543 clients: the transaction is identified by its content (17.2.3).
    tx.add(sip::top_via(r)).add(r.value(sip::HeaderId::CallId)).add(r.from_tag)
        .add(std::uint64_t{r.cseq_number});
  }
  std::string branch;
  branch.reserve(kBranchPrefix.size() + 33);
  branch += kBranchPrefix;
  tx.append_hex(branch);
  branch += '.';
  loop_fnv(r).append_hex(branch);
  return branch;
}

bool is_ours(std::string_view host, std::uint16_t port, const std::vector<LocalEndpoint>& ours) {
  for (const auto& ep : ours) {
    auto effective = port ? port : default_port(ep.transport);
    if (ep.port == effective && sip::iequals(ep.host, host)) return true;
  }
  return false;
}

bool is_looped(const sip::Message& request, const std::vector<LocalEndpoint>& ours) {
  // The hash is computed only for a request carrying one of our Vias.
  std::string expected;
  auto ours_and_same = [&](const sip::Via& via) {
    if (!via.branch.starts_with(kBranchPrefix) || !is_ours(via.host, via.port, ours)) return false;
    auto dot = via.branch.rfind('.');
    if (dot == std::string_view::npos) return false;
    if (expected.empty()) expected = loop_hash(request);
    return via.branch.substr(dot + 1) == expected;
  };
  // parse kept the first two Vias; only a third and later ones are read here,
  // and only when they carry our branch prefix.
  if (ours_and_same(request.via)) return true;
  if (request.second_via_element.empty()) return false;
  if (ours_and_same(request.second_via)) return true;
  bool looped = false;
  std::size_t seen = 0;
  for (const auto& header : request.headers) {
    if (header.id != sip::HeaderId::Via) continue;
    sip::for_each_list_item(header.value, [&](std::string_view item) {
      if (++seen <= 2 || item.find(kBranchPrefix) == std::string_view::npos) return true;
      auto via = sip::parse_via(item);
      looped = via && ours_and_same(*via);
      return !looped;
    });
    if (looped) break;
  }
  return looped;
}

std::string via_with_received(std::string_view via_item, const Address& source) {
  auto via = sip::parse_via(via_item);
  return via ? via_with_received(via_item, *via, source) : std::string(via_item);
}

std::string via_with_received(std::string_view via_item, const sip::Via& via, const Address& source) {
  // At most two insertions, built in one pass: "=port" right after an empty
  // rport's name (RFC 3581 4), and ";received=" at the end.
  std::size_t rport_end = std::string_view::npos;
  if (via.has_rport && via.rport.empty()) {
    auto params = via.params;
    for (std::size_t pos = params.find(';'); pos != std::string_view::npos; pos = params.find(';', pos + 1)) {
      std::size_t name = pos + 1;
      while (name < params.size() && sip::is_ws(params[name])) ++name;
      std::size_t after = name + 5;
      if (after <= params.size() && sip::iequals(params.substr(name, 5), "rport") &&
          (after == params.size() || params[after] == ';' || sip::is_ws(params[after]))) {
        rport_end = static_cast<std::size_t>(params.data() - via_item.data()) + after;
        break;
      }
    }
  }
  auto src_ip = source.ip();
  auto via_host = via.host;
  if (via_host.size() > 2 && via_host.front() == '[') via_host = via_host.substr(1, via_host.size() - 2);
  // received= when the sent-by host is not the source address, and always with rport.
  const bool add_received = via.received.empty() && (via.has_rport || !sip::iequals(via_host, src_ip));
  std::string out;
  out.reserve(via_item.size() + src_ip.size() + 24);
  if (rport_end == std::string_view::npos) {
    out.append(via_item);
  } else {
    out.append(via_item.substr(0, rport_end));
    out += '=';
    out += std::to_string(source.port());
    out.append(via_item.substr(rport_end));
  }
  if (add_received) {
    out += ";received=";
    out += src_ip;
  }
  return out;
}

std::vector<std::string_view> route_values(const sip::Message& msg) {
  std::vector<std::string_view> out;
  for (const auto& item : list_items(msg, sip::HeaderId::Route)) out.push_back(item.text);
  return out;
}

std::string our_uri(const LocalEndpoint& ep, const Flow* in_flow, const Flow* out_flow) {
  std::string uri = "<sip:" + ep.host + ":" + std::to_string(ep.port);
  if (ep.transport != Transport::udp) uri += std::string(";transport=") + std::string(config::to_string(ep.transport));
  uri += ";lr";
  if (in_flow) uri += ";swin=" + flow_token(*in_flow);
  if (out_flow) uri += ";swout=" + flow_token(*out_flow);
  return uri + ">";
}

std::string forward_request(const sip::Message& r, const Address& source, const RequestEdits& how) {
  EditList edits;
  const sip::Header* via_header = r.first(sip::HeaderId::Via);

  // Our Via goes on top (16.6 step 8), the sender's gets received/rport (18.2.1).
  // Appended into one string reserved once: it is built for every request.
  std::string via;
  via.reserve(96 + how.out.host.size() + how.branch.size());
  via += "Via: SIP/2.0/";
  via += transport_upper(how.out.transport);
  via += ' ';
  via += how.out.host;
  via += ':';
  sip::append_decimal(via, how.out.port);
  via += ";branch=";
  if (how.branch.empty()) via += compute_branch(r);
  else via += how.branch;
  if (how.ask_rport) via += ";rport";
  // Where the request came in, so its responses go back out of the same socket
  // (RFC 3581 4) and over the same TCP connection (RFC 3261 18.2.2), rport or not.
  if (how.inbound && how.inbound->listener != kAnyListener) {
    via += ";swl=";
    sip::append_decimal(via, how.inbound->listener);
  }
  if (how.inbound && how.inbound->connection_id) {
    via += ";swc=";
    sip::append_decimal(via, how.inbound->connection_id);
  }
  via += "\r\n";
  edits.insert(via_header->begin, std::move(via));
  auto sender_via = sip::top_via(r);
  edits.replace(r.offset_of(sender_via), static_cast<std::uint32_t>(sender_via.size()),
                via_with_received(sender_via, r.via, source));

  // Max-Forwards (16.6 step 3): decrement, or add 70 when absent.
  if (const auto* mf = r.first(sip::HeaderId::MaxForwards)) {
    auto v = sip::parse_uint<unsigned>(mf->value).value_or(1);
    edits.replace(r.offset_of(mf->value), static_cast<std::uint32_t>(mf->value.size()),
                  std::to_string(v > 0 ? v - 1 : 0));
  } else {
    edits.insert(r.headers_end, "Max-Forwards: 70\r\n");
  }

  // 16.6 step 6: a strict router takes its URI as the Request-URI, and the
  // Request-URI goes last in Route.
  auto routes = how.strict_route ? list_items(r, sip::HeaderId::Route) : std::vector<Item>{};
  const bool strict = routes.size() > how.routes_to_pop;
  pop_items(r, sip::HeaderId::Route, how.routes_to_pop + (strict ? 1 : 0), edits);
  if (strict) {
    auto next = sip::parse_name_addr(routes[how.routes_to_pop].text);
    edits.replace(r.offset_of(r.request_uri), static_cast<std::uint32_t>(r.request_uri.size()),
                  std::string(next ? next->uri_text : routes[how.routes_to_pop].text));
    edits.insert(routes.back().header->end, "Route: <" + std::string(r.request_uri) + ">\r\n");
  }

  // Record-Route (16.6 step 4). When the request changes endpoint (transport or
  // address), two entries: the top one faces the next hop, the second the sender,
  // so in-dialog requests from either side reach the right leg.
  auto insert_top = [&](sip::HeaderId id, std::string_view name, std::string value) {
    const auto* existing = r.first(id);
    edits.insert(existing ? existing->begin : r.headers_end, std::string(name) + ": " + value + "\r\n");
  };
  if (how.record_route) {
    if (how.in == how.out) {
      insert_top(sip::HeaderId::RecordRoute, "Record-Route", our_uri(how.out, how.inbound, how.outbound));
    } else {
      insert_top(sip::HeaderId::RecordRoute, "Record-Route",
                 our_uri(how.out, nullptr, how.outbound) + ", " + our_uri(how.in, how.inbound, nullptr));
    }
  }
  // Path (RFC 3327 4): the registrar routes requests for this contact through the
  // endpoint facing it, and the flow token leads them to the phone.
  if (how.add_path) insert_top(sip::HeaderId::Path, "Path", our_uri(how.out, how.inbound, nullptr));

  if (how.remove) edits.erase(how.remove->begin, how.remove->end - how.remove->begin);
  if (how.add_content_length && !r.first(sip::HeaderId::ContentLength)) edits.insert(r.headers_end, "Content-Length: " + std::to_string(r.body.size()) + "\r\n");
  return edits.apply(r.raw);
}

std::string forward_response(const sip::Message& response) {
  // Pops our Via: its element and the comma after it when the line carries
  // more, else the whole line. parse kept both elements, so no Via is re-read.
  EditList edits;
  const auto* line = response.first(sip::HeaderId::Via);
  const auto second = response.second_via_element;
  if (!second.empty() && response.offset_of(second) < line->end) {
    auto from = response.offset_of(response.top_via_element);
    edits.erase(from, response.offset_of(second) - from);
  } else {
    edits.erase(line->begin, line->end - line->begin);
  }
  return edits.apply(response.raw);
}

}  // namespace sw::proxy
