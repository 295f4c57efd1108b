// Costs of the auth diagnosis: the FlowTracker's time per observed message, fed
// as Server::observe feeds it (every relayed message seen received, then sent),
// what a live flow holds in memory, the once-a-second tick over the live flows,
// and rendering a verdict's two log lines.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/counting_new.hpp"
#include "diag/flow_tracker.hpp"
#include "diag/observer.hpp"
#include "diag/verdict.hpp"
#include "proxy/sip/message.hpp"

namespace {

using namespace sw;
using namespace std::chrono_literals;
using diag::Direction;
using diag::FlowTracker;
using diag::Leg;
using diag::Observed;
using diag::Verdict;
using diag::VerdictKind;
using Clock = std::chrono::system_clock;

const Clock::time_point kStart = Clock::time_point{} + 1'763'719'200s;
constexpr std::string_view kPhone = "203.0.113.7:40000";   // the phone's NAT address
constexpr std::string_view kUpstream = "192.0.2.50:5060";

// Messages of the bench/scenarios load tests with SIPp's fields filled in; i
// makes the Call-ID, tags, branch and nonce of one transaction distinct. The
// phone sits behind a plain NAT (private addresses inside, a public source), so
// the ALG hint rules run and find nothing, as for most phones.
std::string via_phone(std::size_t i) {
  return "Via: SIP/2.0/UDP 192.168.1.10:5061;branch=z9hG4bK-4711-" + std::to_string(i) + "-0;rport\r\n";
}
// What a response to a relayed request carries: our Via, then the phone's.
std::string vias_back(std::size_t i) {
  return "Via: SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKsw4f1c2e9a7b3d5061.9e2a4c6b8d0f1325\r\n"
         "Via: SIP/2.0/UDP 192.168.1.10:5061;branch=z9hG4bK-4711-" +
         std::to_string(i) + "-0;rport=40000;received=203.0.113.7\r\n";
}
std::string call_id(std::size_t i) { return "Call-ID: " + std::to_string(i) + "-4711@192.168.1.10\r\n"; }
std::string from_tag(std::size_t i, char kind) {
  return "<sip:1001@bench.test>;tag=4711" + std::string(1, kind) + std::to_string(i) + "\r\n";
}

std::vector<std::string> options_transaction(std::size_t i) {
  return {
      "OPTIONS sip:2000@bench.test SIP/2.0\r\n" + via_phone(i) + "From: " + from_tag(i, 'o') +
          "To: <sip:2000@bench.test>\r\n" + call_id(i) +
          "CSeq: 1 OPTIONS\r\n"
          "Contact: <sip:1001@192.168.1.10:5061>\r\n"
          "Max-Forwards: 70\r\n"
          "Accept: application/sdp\r\n"
          "User-Agent: sipwitness-bench\r\n"
          "Content-Length: 0\r\n\r\n",
      "SIP/2.0 200 OK\r\n" + vias_back(i) + "From: " + from_tag(i, 'o') +
          "To: <sip:2000@bench.test>;tag=99p" + std::to_string(i) + "\r\n" + call_id(i) +
          "CSeq: 1 OPTIONS\r\n"
          "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n"
          "Content-Length: 0\r\n\r\n",
  };
}

std::string register_request(std::size_t i, int cseq, const std::string& authorization) {
  return "REGISTER sip:bench.test SIP/2.0\r\n" + via_phone(i) + "From: " + from_tag(i, 'r') +
         "To: <sip:1001@bench.test>\r\n" + call_id(i) + "CSeq: " + std::to_string(cseq) +
         " REGISTER\r\n"
         "Contact: <sip:1001@192.168.1.10:5061>\r\n" +
         authorization +
         "Expires: 3600\r\n"
         "Max-Forwards: 70\r\n"
         "User-Agent: sipwitness-bench\r\n"
         "Content-Length: 0\r\n\r\n";
}
std::string nonce(std::size_t i) { return "bench-" + std::to_string(i) + "-7f3a9c"; }

// REGISTER, the registrar's 401, the REGISTER answering it, 200
// (bench/scenarios/register_uac.xml against registrar_401_uas.xml).
std::vector<std::string> register_challenge(std::size_t i) {
  const std::string to_tagged = "To: <sip:1001@bench.test>;tag=99p" + std::to_string(i) + "\r\n";
  return {
      register_request(i, 1, ""),
      "SIP/2.0 401 Unauthorized\r\n" + vias_back(i) + "From: " + from_tag(i, 'r') + to_tagged + call_id(i) +
          "CSeq: 1 REGISTER\r\n"
          "WWW-Authenticate: Digest realm=\"bench.test\", nonce=\"" +
          nonce(i) +
          "\", algorithm=MD5, qop=\"auth\"\r\n"
          "Content-Length: 0\r\n\r\n",
      register_request(i, 2,
                       "Authorization: Digest username=\"1001\",realm=\"bench.test\",cnonce=\"6b8b4567\","
                       "nc=00000001,qop=auth,uri=\"sip:bench.test\",nonce=\"" +
                           nonce(i) +
                           "\",response=\"9c4fd6ab1e1a8e5de5cfd4c3b8e7a2f1\",algorithm=MD5\r\n"),
      "SIP/2.0 200 OK\r\n" + vias_back(i) + "From: " + from_tag(i, 'r') + to_tagged + call_id(i) +
          "CSeq: 2 REGISTER\r\n"
          "Contact: <sip:1001@192.168.1.10:5061>;expires=3600\r\n"
          "Content-Length: 0\r\n\r\n",
  };
}

std::string invite_request(std::size_t i, int cseq, const std::string& proxy_authorization) {
  const std::string sdp =
      "v=0\r\no=1001 123 456 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n";
  return "INVITE sip:2002@bench.test SIP/2.0\r\n" + via_phone(i) + "Max-Forwards: 70\r\n" +
         "To: <sip:2002@bench.test>\r\n" + "From: \"Alice\" " + from_tag(i, 'c') + call_id(i) + "CSeq: " +
         std::to_string(cseq) +
         " INVITE\r\n"
         "Contact: <sip:1001@192.168.1.10:5061>\r\n" +
         proxy_authorization +
         "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, NOTIFY\r\n"
         "User-Agent: sipwitness-bench\r\n"
         "Content-Type: application/sdp\r\n"
         "Content-Length: " +
         std::to_string(sdp.size()) + "\r\n\r\n" + sdp;
}

// Pre-parsed messages of `transactions` distinct transactions, each in the
// order its messages cross the proxy, so the loops time the tracker alone.
class Script {
 public:
  template <class Make>
  Script(std::size_t transactions, Make make) {
    for (std::size_t i = 0; i < transactions; ++i) {
      auto texts = make(i);
      per_transaction_ = texts.size();
      for (auto& t : texts) texts_.push_back(std::move(t));
    }
    // Parsed only now: the messages view into texts_, which no longer moves.
    messages_.reserve(texts_.size());
    for (const auto& t : texts_) {
      auto m = sip::parse(t, sip::Framing::datagram);
      if (!m) return;
      messages_.push_back(std::move(*m));
    }
    ok_ = true;
  }
  bool ok() const { return ok_; }
  std::size_t transactions() const { return per_transaction_ ? texts_.size() / per_transaction_ : 0; }
  std::size_t per_transaction() const { return per_transaction_; }
  const sip::Message& message(std::size_t transaction, std::size_t step) const {
    return messages_[transaction * per_transaction_ + step];
  }

 private:
  std::vector<std::string> texts_;
  std::vector<sip::Message> messages_;
  std::size_t per_transaction_ = 0;
  bool ok_ = false;
};

// One message relayed by the proxy, as Server::observe shows it: received from
// one side, then sent to the other. The sent event carries the same parsed
// message; its wire bytes would be our edited copy, which the tracker never
// reads, so the received bytes stand in. Requests come from the phone,
// responses from the upstream.
constexpr std::size_t kEventsPerRelay = 2;
void relay(FlowTracker& tracker, const sip::Message& m, Clock::time_point at) {
  const Leg from = m.is_request ? Leg::phone : Leg::upstream;
  const Leg to = m.is_request ? Leg::upstream : Leg::phone;
  const auto peer = [](Leg leg) { return leg == Leg::phone ? kPhone : kUpstream; };
  tracker.on_message(Observed{Direction::received, from, at, "udp", peer(from), m, false, {}, m.raw, nullptr});
  tracker.on_message(Observed{Direction::sent, to, at, "udp", peer(to), m, false, {}, m.raw, nullptr});
}

diag::TrackerSettings settings(std::size_t max_flows) {
  diag::TrackerSettings s;
  s.max_flows = max_flows;
  return s;
}

// Transactions cycle through a pool small enough to stay in cache, as a message
// just parsed by the proxy is. Each transaction's flow ends on its final
// response before the pool comes round again, so every iteration creates and
// ends a flow of its own Call-ID and the tracker's state stays empty.
constexpr std::size_t kPool = 256;

// Feeds one transaction per iteration and reports time and allocations per
// observed message (an on_message call: a relayed message counts twice).
void track_transactions(benchmark::State& state, const Script& script, VerdictKind expected) {
  if (!script.ok()) {
    state.SkipWithError("a scripted message does not parse");
    return;
  }
  std::uint64_t verdicts = 0, unexpected = 0;
  FlowTracker tracker(settings(1000), [&](const Verdict& v) {
    ++verdicts;
    if (v.verdict != expected) ++unexpected;
  });
  auto now = kStart;
  std::size_t next = 0;
  const std::uint64_t allocs_before = bench_alloc::allocs;
  for (auto _ : state) {
    for (std::size_t step = 0; step < script.per_transaction(); ++step) {
      relay(tracker, script.message(next, step), now);
      now += 20ms;  // the far side's answer time: never near flow_timeout
    }
    next = next + 1 == script.transactions() ? 0 : next + 1;
  }
  const std::uint64_t allocs = bench_alloc::allocs - allocs_before;
  if (tracker.live_flows() != 0 || verdicts != static_cast<std::uint64_t>(state.iterations()) || unexpected != 0) {
    state.SkipWithError("flows did not end with the expected verdict on their final response");
    return;
  }
  const auto events = static_cast<double>(state.iterations()) *
                      static_cast<double>(script.per_transaction() * kEventsPerRelay);
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.counters["ns_per_msg"] = benchmark::Counter(events, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["allocs_per_msg"] = static_cast<double>(allocs) / events;
}

// The load test's OPTIONS: request in and out, 200 in and out; one flow
// (a plain `ok` verdict) per iteration.
void BM_TrackOptionsTransaction(benchmark::State& state) {
  static const Script script(kPool, options_transaction);
  track_transactions(state, script, VerdictKind::ok);
}
BENCHMARK(BM_TrackOptionsTransaction);

// A registration through a challenge: REGISTER, 401 with WWW-Authenticate,
// REGISTER with Authorization, 200, each in and out (ok_after_challenge).
void BM_TrackRegisterChallenge(benchmark::State& state) {
  static const Script script(kPool, register_challenge);
  track_transactions(state, script, VerdictKind::ok_after_challenge);
}
BENCHMARK(BM_TrackRegisterChallenge);

// Bytes the allocator hands out, both from the heap and as separate mappings
// (big blocks, such as the flow map's bucket array).
std::size_t heap_in_use() {
  const struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

enum class LiveKind { register_sent, invite_sent, invite_answered_407 };
const char* label(LiveKind k) {
  switch (k) {
    case LiveKind::register_sent: return "REGISTER, no answer yet";
    case LiveKind::invite_sent: return "INVITE, no answer yet";
    case LiveKind::invite_answered_407: return "INVITE, 407, INVITE with credentials, no answer yet";
  }
  return "";
}

// Brings one flow of transaction i to the live state `kind` (the messages are
// built, parsed and dropped: the tracker keeps copies of what it needs).
void open_flow(FlowTracker& tracker, LiveKind kind, std::size_t i, Clock::time_point at) {
  auto feed = [&](const std::string& text) {
    auto m = sip::parse(text, sip::Framing::datagram);
    if (m) relay(tracker, *m, at);
  };
  switch (kind) {
    case LiveKind::register_sent:
      feed(register_request(i, 1, ""));
      break;
    case LiveKind::invite_sent:
      feed(invite_request(i, 1, ""));
      break;
    case LiveKind::invite_answered_407:
      feed(invite_request(i, 1, ""));
      feed("SIP/2.0 407 Proxy Authentication Required\r\n" + vias_back(i) + "From: \"Alice\" " + from_tag(i, 'c') +
           "To: <sip:2002@bench.test>;tag=99p" + std::to_string(i) + "\r\n" + call_id(i) +
           "CSeq: 1 INVITE\r\n"
           "Proxy-Authenticate: Digest realm=\"bench.test\", nonce=\"" +
           nonce(i) +
           "\", algorithm=MD5, qop=\"auth\"\r\n"
           "Content-Length: 0\r\n\r\n");
      feed(invite_request(i, 2,
                          "Proxy-Authorization: Digest username=\"1001\",realm=\"bench.test\",cnonce=\"6b8b4567\","
                          "nc=00000001,qop=auth,uri=\"sip:2002@bench.test\",nonce=\"" +
                              nonce(i) +
                              "\",response=\"9c4fd6ab1e1a8e5de5cfd4c3b8e7a2f1\",algorithm=MD5\r\n"));
      break;
  }
}

constexpr std::size_t kLiveFlows = 100000;

// Memory of the tracker's state: 100000 flows of distinct Call-IDs, each still
// waiting for its final response, measured with mallinfo2 around their
// creation (malloc's chunk sizes and headers included). The time is that of
// building, parsing and tracking the 100000 flows' messages, not a per-message cost.
void BM_LiveFlowMemory(benchmark::State& state) {
  const auto kind = static_cast<LiveKind>(state.range(0));
  state.SetLabel(label(kind));
  std::size_t bytes = 0, live_allocs = 0, flows = 0;
  std::uint64_t evictions = 0;
  std::optional<FlowTracker> tracker;
  for (auto _ : state) {
    tracker.emplace(settings(kLiveFlows), [](const Verdict&) {});
    const std::size_t before = heap_in_use();
    const std::uint64_t allocs_before = bench_alloc::allocs - bench_alloc::frees;
    for (std::size_t i = 0; i < kLiveFlows; ++i) open_flow(*tracker, kind, i, kStart);
    bytes = heap_in_use() - before;
    live_allocs = static_cast<std::size_t>(bench_alloc::allocs - bench_alloc::frees - allocs_before);
    flows = tracker->live_flows();
    evictions = tracker->evictions();
  }
  tracker.reset();
  if (flows != kLiveFlows || evictions != 0) {
    state.SkipWithError("not every flow stayed live");
    return;
  }
  state.counters["flows"] = static_cast<double>(flows);
  state.counters["bytes_per_flow"] = static_cast<double>(bytes) / static_cast<double>(flows);
  state.counters["allocs_per_flow"] = static_cast<double>(live_allocs) / static_cast<double>(flows);
}
BENCHMARK(BM_LiveFlowMemory)
    ->Arg(static_cast<int>(LiveKind::register_sent))
    ->Arg(static_cast<int>(LiveKind::invite_sent))
    ->Arg(static_cast<int>(LiveKind::invite_answered_407))
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// The proxy ticks the tracker once a second on its event loop: a walk over
// every live flow even when none is due. Here 100000 unanswered REGISTERs, 1 s
// after their last message.
void BM_TickLiveFlows(benchmark::State& state) {
  FlowTracker tracker(settings(kLiveFlows), [](const Verdict&) {});
  for (std::size_t i = 0; i < kLiveFlows; ++i) open_flow(tracker, LiveKind::register_sent, i, kStart);
  for (auto _ : state) tracker.tick(kStart + 1s);
  if (tracker.live_flows() != kLiveFlows) {
    state.SkipWithError("tick ended flows that were not due");
    return;
  }
  state.counters["ns_per_flow"] = benchmark::Counter(
      static_cast<double>(state.iterations()) * static_cast<double>(kLiveFlows),
      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_TickLiveFlows)->Unit(benchmark::kMillisecond);

// What the proxy's verdict sink does per ended flow besides logging: the JSON
// line of diag.verdict_log and the human line of the log. Arg 0: the OPTIONS
// flow's verdict; 1: the challenged REGISTER's.
void BM_VerdictLines(benchmark::State& state) {
  std::optional<Verdict> verdict;
  FlowTracker tracker(settings(16), [&](const Verdict& v) { verdict = v; });
  const Script script(1, state.range(0) == 0 ? options_transaction : register_challenge);
  for (std::size_t step = 0; script.ok() && step < script.per_transaction(); ++step)
    relay(tracker, script.message(0, step), kStart);
  if (!verdict) {
    state.SkipWithError("the scripted flow gave no verdict");
    return;
  }
  state.SetLabel(std::string(diag::to_string(verdict->verdict)));
  const std::uint64_t allocs_before = bench_alloc::allocs;
  for (auto _ : state) {
    auto json = diag::to_json_line(*verdict);
    auto human = diag::to_human_line(*verdict);
    benchmark::DoNotOptimize(json);
    benchmark::DoNotOptimize(human);
  }
  state.counters["allocs"] =
      benchmark::Counter(static_cast<double>(bench_alloc::allocs - allocs_before), benchmark::Counter::kAvgIterations);
}
BENCHMARK(BM_VerdictLines)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
