// Per-message costs of the relay path: parse, stream framing, routing decision
// and building the forwarded bytes, for requests and responses.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "bench/counting_new.hpp"
#include "proxy/forward.hpp"
#include "proxy/router.hpp"
#include "proxy/sip/message.hpp"

namespace {

using namespace sw;
using AllocCounter = bench_alloc::PerIteration;

const std::string kInvite =
    "INVITE sip:2002@provider.example SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: <sip:2002@provider.example>\r\n"
    "From: \"Alice\" <sip:1001@provider.example>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:1001@192.168.1.10:5060>\r\n"
    "Proxy-Authorization: Digest username=\"1001\", realm=\"provider.example\", "
    "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"sip:2002@provider.example\", "
    "response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    "User-Agent: bench-phone/1.0\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 129\r\n"
    "\r\n"
    "v=0\r\no=1001 123 456 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";

// The 200 OK to kInvite as it comes back from the upstream: our Via on top (the
// branch forward_request writes), the phone's below with received/rport filled
// in, the Record-Route of both proxies and an SDP answer.
const std::string kInviteOk =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKsw4f1c2e9a7b3d5061.9e2a4c6b8d0f1325\r\n"
    "Via: SIP/2.0/UDP 192.168.1.10:5060;branch=z9hG4bK776asdhds;rport=40000;received=203.0.113.7\r\n"
    "Record-Route: <sip:192.0.2.50;lr;ftag=1928301774>\r\n"
    "Record-Route: <sip:198.51.100.1:5060;lr;swin=dWRwOjIwMy4wLjExMy43OjQwMDAw>\r\n"
    "To: <sip:2002@provider.example>;tag=a6c85cf\r\n"
    "From: \"Alice\" <sip:1001@provider.example>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:2002@192.0.2.80:5060>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
    "Server: bench-pbx/2.1\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 136\r\n"
    "\r\n"
    "v=0\r\no=2002 789 790 IN IP4 192.0.2.80\r\ns=-\r\nc=IN IP4 192.0.2.80\r\nt=0 0\r\n"
    "m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n";

// The load test's request (bench/scenarios/options_uac.xml with SIPp's fields
// filled in): small, no body, no credentials, not dialog-forming.
const std::string kOptions =
    "OPTIONS sip:2000@bench.test SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.168.1.10:5061;branch=z9hG4bK-4711-1-0;rport\r\n"
    "From: <sip:1001@bench.test>;tag=4711o1\r\n"
    "To: <sip:2000@bench.test>\r\n"
    "Call-ID: 1-4711@192.168.1.10\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Contact: <sip:1001@192.168.1.10:5061>\r\n"
    "Max-Forwards: 70\r\n"
    "Accept: application/sdp\r\n"
    "User-Agent: sipwitness-bench\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

// The proxy's side of a call from a phone behind NAT toward the upstream.
struct Relay {
  std::vector<proxy::LocalEndpoint> ours{{proxy::Transport::udp, "198.51.100.1", 5060}};
  proxy::Target upstream{proxy::Transport::udp, "192.0.2.50", 5060, std::nullopt};
  proxy::BindingTable bindings{16};
  proxy::Flow phone{proxy::Transport::udp, *proxy::Address::from_ip("203.0.113.7", 40000), 0};

  proxy::RequestDecision route(const sip::Message& m) const {
    proxy::RoutingContext ctx{ours, upstream, bindings, proxy::Clock::now(), "swtag"};
    return proxy::route_request(m, proxy::Inbound{phone, false}, ctx, true, true);
  }
  // The edits as Server::forward_request fills them for a UDP to UDP relay.
  proxy::RequestEdits edits(const proxy::RequestDecision& d) const {
    proxy::RequestEdits how;
    how.out = how.in = ours[0];
    how.inbound = &phone;
    how.outbound = d.target.flow ? &*d.target.flow : nullptr;
    how.routes_to_pop = d.routes_to_pop;
    how.record_route = d.record_route;
    how.add_path = d.add_path;
    return how;
  }
};

// A benchmark of a fixture that does not parse or route as expected measures
// the wrong path: stop it rather than print a number.
bool check(benchmark::State& state, bool ok, const char* what) {
  if (!ok) state.SkipWithError(what);
  return ok;
}

void BM_Parse(benchmark::State& state) {
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto m = sip::parse(kInvite, sip::Framing::datagram);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kInvite.size()));
}
BENCHMARK(BM_Parse);

void BM_ParseResponse(benchmark::State& state) {
  if (!check(state, sip::parse(kInviteOk, sip::Framing::datagram).ok(), "kInviteOk does not parse")) return;
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto m = sip::parse(kInviteOk, sip::Framing::datagram);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kInviteOk.size()));
}
BENCHMARK(BM_ParseResponse);

void BM_ParseOptions(benchmark::State& state) {
  if (!check(state, sip::parse(kOptions, sip::Framing::datagram).ok(), "kOptions does not parse")) return;
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto m = sip::parse(kOptions, sip::Framing::datagram);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kOptions.size()));
}
BENCHMARK(BM_ParseOptions);

void BM_FrameStream(benchmark::State& state) {
  AllocCounter allocs(state);
  for (auto _ : state) benchmark::DoNotOptimize(sip::frame_stream(kInvite));
}
BENCHMARK(BM_FrameStream);

void BM_RouteAndForward(benchmark::State& state) {
  auto m = *sip::parse(kInvite, sip::Framing::datagram);
  std::vector<proxy::LocalEndpoint> ours{{proxy::Transport::udp, "198.51.100.1", 5060}};
  proxy::Target upstream{proxy::Transport::udp, "192.0.2.50", 5060, std::nullopt};
  proxy::BindingTable bindings(16);
  proxy::Flow phone{proxy::Transport::udp, *proxy::Address::from_ip("203.0.113.7", 40000), 0};
  AllocCounter allocs(state);
  for (auto _ : state) {
    proxy::RoutingContext ctx{ours, upstream, bindings, proxy::Clock::now(), "swtag"};
    auto d = proxy::route_request(m, proxy::Inbound{phone, false}, ctx, true, true);
    proxy::RequestEdits how;
    how.out = how.in = ours[0];
    how.inbound = &phone;
    how.record_route = d.record_route;
    auto out = proxy::forward_request(m, phone.remote, how);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_RouteAndForward);

// Only the edit (our Via, received/rport, Max-Forwards, Record-Route) of an
// INVITE routed once beforehand: BM_RouteAndForward minus the routing decision.
void BM_ForwardRequestEdit(benchmark::State& state) {
  auto m = *sip::parse(kInvite, sip::Framing::datagram);
  Relay relay;
  auto d = relay.route(m);
  if (!check(state, d.kind == proxy::RequestDecision::Kind::forward && d.record_route,
             "kInvite is not forwarded with Record-Route"))
    return;
  const auto how = relay.edits(d);
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto out = proxy::forward_request(m, relay.phone.remote, how);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_ForwardRequestEdit);

// What the proxy relays of each response: the received bytes without our top Via.
void BM_ForwardResponse(benchmark::State& state) {
  auto m = *sip::parse(kInviteOk, sip::Framing::datagram);
  if (!check(state, proxy::forward_response(m).find("198.51.100.1:5060;branch") == std::string::npos,
             "forward_response kept our Via"))
    return;
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto out = proxy::forward_response(m);
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_ForwardResponse);

// The load test's per-request proxy work after parsing: routing decision (to
// the upstream) and the forwarded bytes.
void BM_RouteAndForwardOptions(benchmark::State& state) {
  auto m = *sip::parse(kOptions, sip::Framing::datagram);
  Relay relay;
  if (!check(state, relay.route(m).kind == proxy::RequestDecision::Kind::forward, "kOptions is not forwarded"))
    return;
  AllocCounter allocs(state);
  for (auto _ : state) {
    auto d = relay.route(m);
    auto out = proxy::forward_request(m, relay.phone.remote, relay.edits(d));
    benchmark::DoNotOptimize(out);
  }
}
BENCHMARK(BM_RouteAndForwardOptions);

}  // namespace

BENCHMARK_MAIN();
