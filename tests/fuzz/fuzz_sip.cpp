// libFuzzer target: the SIP parser and everything the relay does with a parsed
// message (framing, salvage and local replies, URI/Via parsing, routing
// decisions, forwarding edits, the lab seal checker). Any crash, sanitizer
// report or hang is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "diag/seal.hpp"
#include "proxy/forward.hpp"
#include "proxy/reply.hpp"
#include "proxy/router.hpp"
#include "proxy/sip/message.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"

namespace {

using namespace sw;

const std::vector<proxy::LocalEndpoint> kOurs{{proxy::Transport::udp, "198.51.100.1", 5060},
                                              {proxy::Transport::tcp, "198.51.100.1", 5060}};
const proxy::Target kUpstream{proxy::Transport::udp, "192.0.2.50", 5060, std::nullopt};
const proxy::Address kSource = *proxy::Address::from_ip("203.0.113.7", 40000);

constexpr std::string_view kLabKey = "fuzzing lab key, 16+ bytes";

// A seal that arrived, checked and stripped as the lab path does; and any
// message without one, sealed and checked again, must come back intact.
void exercise_seal(const sip::Message& m, sip::Framing framing) {
  auto check = diag::check_seal(m, kLabKey);
  if (check.header) {
    auto stripped = diag::strip_seal(m, check);
    (void)sip::parse(stripped, framing);
    return;
  }
  auto sealed = diag::add_seal(m, kLabKey, "00000000000000ff");
  auto again = sip::parse(sealed, framing);
  if (!again) return;  // the seal pushed it over a limit: the sender's own parse refuses it too
  auto round_trip = diag::check_seal(*again, kLabKey);
  if (round_trip.status != diag::SealCheck::Status::intact) __builtin_trap();
}

void exercise(const sip::Message& m) {
  for (const auto& h : m.headers) {
    sip::for_each_list_item(h.value, [&](std::string_view item) {
      if (h.id == sip::HeaderId::Via) (void)sip::parse_via(item);
      if (h.id == sip::HeaderId::Contact || h.id == sip::HeaderId::Route || h.id == sip::HeaderId::RecordRoute)
        (void)sip::parse_name_addr(item);
      return true;
    });
  }
  (void)sip::tag_of(m.value(sip::HeaderId::To));
  if (m.is_request) {
    proxy::BindingTable bindings(4);
    auto now = proxy::Clock::time_point{};
    proxy::Flow phone{proxy::Transport::udp, kSource, 0};
    auto tag = proxy::local_tag(m, "fuzz");
    for (bool from_upstream : {false, true}) {
      proxy::RoutingContext ctx{kOurs, kUpstream, bindings, now, tag};
      auto d = proxy::route_request(m, proxy::Inbound{phone, from_upstream}, ctx, true, true);
      proxy::RequestEdits how;
      how.out = kOurs[1];
      how.in = kOurs[0];
      how.inbound = &phone;
      how.routes_to_pop = d.routes_to_pop;
      how.record_route = d.record_route;
      how.add_path = d.add_path;
      how.add_content_length = true;
      auto out = proxy::forward_request(m, kSource, how);
      // What we forward must itself be a message we can parse again.
      auto again = sip::parse(out, sip::Framing::stream);
      if (!again && again.error().code != Errc::too_large && again.error().code != Errc::line_too_long &&
          again.error().code != Errc::too_many_headers)
        __builtin_trap();
      bindings.remember_register(proxy::compute_branch(m), m, phone, now);
    }
    (void)proxy::make_reply(m, kSource, 400, "Bad Request", "fuzz \"x\"", "fuzz");
  } else {
    (void)proxy::route_response(m, kOurs);
    (void)proxy::forward_response(m);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto m = sip::parse(bytes, sip::Framing::datagram)) {
    exercise(*m);
    exercise_seal(*m, sip::Framing::datagram);
  } else (void)proxy::make_reply(sip::salvage(bytes), kSource, 400, "Bad Request", "fuzz", "fuzz");
  if (auto framed = sip::frame_stream(bytes)) {
    if (auto m = sip::parse(bytes.substr(0, *framed), sip::Framing::stream)) exercise(*m);
  }
  (void)sip::parse_uri(bytes);
  (void)sip::parse_name_addr(bytes);
  return 0;
}
