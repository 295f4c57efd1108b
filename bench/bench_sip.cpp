// Per-message costs of the relay path: parse, stream framing, routing decision
// and building the forwarded bytes.
#include <benchmark/benchmark.h>

#include <string>

#include "proxy/forward.hpp"
#include "proxy/router.hpp"
#include "proxy/sip/message.hpp"

namespace {

using namespace sw;

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

void BM_Parse(benchmark::State& state) {
  for (auto _ : state) {
    auto m = sip::parse(kInvite, sip::Framing::datagram);
    benchmark::DoNotOptimize(m);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kInvite.size()));
}
BENCHMARK(BM_Parse);

void BM_FrameStream(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(sip::frame_stream(kInvite));
}
BENCHMARK(BM_FrameStream);

void BM_RouteAndForward(benchmark::State& state) {
  auto m = *sip::parse(kInvite, sip::Framing::datagram);
  std::vector<proxy::LocalEndpoint> ours{{proxy::Transport::udp, "198.51.100.1", 5060}};
  proxy::Target upstream{proxy::Transport::udp, "192.0.2.50", 5060, std::nullopt};
  proxy::BindingTable bindings(16);
  proxy::Flow phone{proxy::Transport::udp, *proxy::Address::from_ip("203.0.113.7", 40000), 0};
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

}  // namespace

BENCHMARK_MAIN();
