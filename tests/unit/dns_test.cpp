#include "proxy/dns.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <vector>

namespace sw::proxy::dns {
namespace {

using T = Transport;
const std::vector<Transport> kAll{T::udp, T::tcp, T::tls};

NaptrRecord naptr(std::uint16_t order, std::uint16_t pref, std::string service, std::string replacement,
                  std::string flags = "s") {
  return {order, pref, std::move(flags), std::move(service), "", std::move(replacement)};
}

// A random source that replays fixed values and records the ranges asked for.
struct Scripted {
  Scripted() = default;
  Scripted(std::initializer_list<std::uint32_t> v) : values(v) {}
  std::deque<std::uint32_t> values;
  std::vector<std::uint32_t> asked;
  std::function<std::uint32_t(std::uint32_t)> fn() {
    return [this](std::uint32_t n) {
      asked.push_back(n);
      auto v = values.empty() ? 0 : values.front();
      if (!values.empty()) values.pop_front();
      return v;
    };
  }
};

std::vector<std::string> targets(const std::vector<SrvRecord>& records) {
  std::vector<std::string> out;
  out.reserve(records.size());
  for (const auto& r : records) out.push_back(r.target);
  return out;
}

TEST(DnsNaptr, SortsByOrderThenPreference) {
  auto got = usable_naptr({naptr(20, 10, "SIP+D2U", "_sip._udp.example.com"),
                           naptr(10, 50, "SIP+D2T", "_sip._tcp.example.com"),
                           naptr(10, 40, "SIPS+D2T", "_sips._tcp.example.com")},
                          false, kAll);
  std::vector<SrvQuery> want{{T::tls, "_sips._tcp.example.com"},
                             {T::tcp, "_sip._tcp.example.com"},
                             {T::udp, "_sip._udp.example.com"}};
  EXPECT_EQ(got, want);
}

TEST(DnsNaptr, SipsKeepsOnlySipsServices) {
  auto got = usable_naptr({naptr(10, 10, "SIP+D2U", "_sip._udp.example.com"),
                           naptr(20, 10, "SIP+D2T", "_sip._tcp.example.com"),
                           naptr(30, 10, "SIPS+D2T", "_sips._tcp.example.com")},
                          true, kAll);
  EXPECT_EQ(got, (std::vector<SrvQuery>{{T::tls, "_sips._tcp.example.com"}}));
}

TEST(DnsNaptr, DropsUnknownServicesAndNonTerminalFlags) {
  auto got = usable_naptr({naptr(10, 10, "SIP+D2S", "_sip._sctp.example.com"),        // SCTP: no listener type
                           naptr(10, 20, "SIP+D2W", "_sip._ws.example.com"),          // WebSocket
                           naptr(10, 30, "SIP+D2U", "other.example.com", ""),         // non-terminal
                           naptr(10, 40, "SIP+D2U", "_sip._udp.example.com", "a"),   // "a": address, not SRV
                           naptr(10, 50, "E2U+sip", "_sip._udp.example.com"),         // ENUM, not SIP
                           naptr(10, 60, "sip+d2t", "_sip._tcp.example.com.", "S")},  // case-insensitive; root dot
                          false, kAll);
  EXPECT_EQ(got, (std::vector<SrvQuery>{{T::tcp, "_sip._tcp.example.com"}}));
}

TEST(DnsNaptr, FiltersToUsableTransportsAndDropsRepeats) {
  std::vector<NaptrRecord> records{naptr(10, 10, "SIP+D2U", "_sip._udp.example.com"),
                                   naptr(10, 20, "SIP+D2T", "_sip._tcp.example.com"),
                                   naptr(10, 30, "SIP+D2T", "_sip._tcp.example.com"),
                                   naptr(10, 40, "SIPS+D2T", "_sips._tcp.example.com"),
                                   naptr(10, 50, "SIP+D2U", "")};  // empty replacement: unusable
  EXPECT_EQ(usable_naptr(records, false, {T::tcp}), (std::vector<SrvQuery>{{T::tcp, "_sip._tcp.example.com"}}));
  EXPECT_TRUE(usable_naptr(records, true, {T::udp, T::tcp}).empty());
  EXPECT_EQ(usable_naptr(records, false, {}).size(), 3u);  // empty usable set: all transports
}

TEST(DnsSrvQueries, DefaultOrder) {
  EXPECT_EQ(default_srv_queries("example.com", false, kAll),
            (std::vector<SrvQuery>{{T::udp, "_sip._udp.example.com"},
                                   {T::tcp, "_sip._tcp.example.com"},
                                   {T::tls, "_sips._tcp.example.com"}}));
  EXPECT_EQ(default_srv_queries("example.com", false, {T::tcp, T::udp}),
            (std::vector<SrvQuery>{{T::udp, "_sip._udp.example.com"}, {T::tcp, "_sip._tcp.example.com"}}));
  EXPECT_EQ(default_srv_queries("example.com", true, kAll),
            (std::vector<SrvQuery>{{T::tls, "_sips._tcp.example.com"}}));
  EXPECT_TRUE(default_srv_queries("example.com", true, {T::udp}).empty());
}

TEST(DnsSrvQueries, NameForTransport) {
  EXPECT_EQ(srv_name(T::udp, false, "x.test"), "_sip._udp.x.test");
  EXPECT_EQ(srv_name(T::tcp, false, "x.test"), "_sip._tcp.x.test");
  EXPECT_EQ(srv_name(T::tls, false, "x.test"), "_sips._tcp.x.test");
  EXPECT_EQ(srv_name(T::tcp, true, "x.test"), "_sips._tcp.x.test");
}

TEST(DnsOrderSrv, PriorityGroupsComeFirstToLast) {
  Scripted r;
  auto got = order_srv({{20, 0, 5060, "c"}, {10, 0, 5060, "a"}, {30, 0, 5060, "d"}, {10, 0, 5060, "b"}}, r.fn());
  EXPECT_EQ(targets(got), (std::vector<std::string>{"a", "b", "c", "d"}));
}

TEST(DnsOrderSrv, WeightedSelectionFollowsRunningSum) {
  // Weights 60 (a) and 40 (b): running sums 60, 100. 61 picks b, then only a is left.
  Scripted r{61, 0};
  auto got = order_srv({{10, 60, 5060, "a"}, {10, 40, 5060, "b"}}, r.fn());
  EXPECT_EQ(targets(got), (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(r.asked, (std::vector<std::uint32_t>{100, 60}));
  // 60 still falls within a's share.
  Scripted r2{60, 0};
  EXPECT_EQ(targets(order_srv({{10, 60, 5060, "a"}, {10, 40, 5060, "b"}}, r2.fn())),
            (std::vector<std::string>{"a", "b"}));
}

TEST(DnsOrderSrv, WeightZeroGoesFirstInTheSumButIsRarelyPicked) {
  // z (weight 0) is placed first: only a random 0 selects it.
  Scripted r{1, 0};
  auto got = order_srv({{10, 5, 5060, "a"}, {10, 0, 5060, "z"}}, r.fn());
  EXPECT_EQ(targets(got), (std::vector<std::string>{"a", "z"}));
  Scripted r0{0, 0};
  EXPECT_EQ(targets(order_srv({{10, 5, 5060, "a"}, {10, 0, 5060, "z"}}, r0.fn())),
            (std::vector<std::string>{"z", "a"}));
}

TEST(DnsOrderSrv, AllZeroWeightsKeepAnswerOrder) {
  Scripted r;
  auto got = order_srv({{10, 0, 5060, "a"}, {10, 0, 5060, "b"}, {10, 0, 5060, "c"}}, r.fn());
  EXPECT_EQ(targets(got), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r.asked, (std::vector<std::uint32_t>{0, 0, 0}));
}

TEST(DnsOrderSrv, RandomIsPerPriorityAndOutOfRangeIsClamped) {
  Scripted r{1000, 7};
  auto got = order_srv({{20, 3, 5062, "c"}, {10, 1, 5060, "a"}, {10, 1, 5061, "b"}}, r.fn());
  // 1000 clamps to the sum (2): b; then a alone; then c alone in its own priority.
  EXPECT_EQ(targets(got), (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_EQ(r.asked, (std::vector<std::uint32_t>{2, 1, 3}));
  EXPECT_EQ(got[0].port, 5061);
}

TEST(DnsOrderSrv, DropsUnavailableTargets) {
  Scripted r;
  EXPECT_TRUE(order_srv({{0, 0, 0, "."}}, r.fn()).empty());
  EXPECT_EQ(targets(order_srv({{0, 0, 0, ""}, {10, 0, 5060, "a"}}, r.fn())), (std::vector<std::string>{"a"}));
}

TEST(DnsOrderSrv, WeightsDistributeProportionally) {
  // With a real random source, 3:1 weights put the heavier first about 75% of the time.
  std::uint32_t state = 12345;
  auto lcg = [&state](std::uint32_t n) {
    state = state * 1664525u + 1013904223u;
    return static_cast<std::uint32_t>((static_cast<std::uint64_t>(state >> 8) * (std::uint64_t{n} + 1)) >> 24);
  };
  int heavy_first = 0;
  for (int i = 0; i < 4000; ++i)
    if (order_srv({{1, 30, 1, "heavy"}, {1, 10, 1, "light"}}, lcg).front().target == "heavy") ++heavy_first;
  EXPECT_NEAR(heavy_first / 4000.0, 0.75, 0.04);
}

TEST(DnsPlan, ExplicitPortMeansAddressesOnly) {
  auto p = plan({"pbx.test", 5080, std::nullopt, false, kAll});
  EXPECT_EQ(p.start, Plan::Start::address);
  EXPECT_EQ(p.address_transport, T::udp);
  EXPECT_EQ(p.address_port, 5080);
  auto tcp = plan({"pbx.test", 5080, T::tcp, false, kAll});
  EXPECT_EQ(tcp.start, Plan::Start::address);
  EXPECT_EQ(tcp.address_transport, T::tcp);
  auto sips = plan({"pbx.test", 5091, std::nullopt, true, kAll});
  EXPECT_EQ(sips.address_transport, T::tls);
  EXPECT_EQ(sips.address_port, 5091);
}

TEST(DnsPlan, ExplicitTransportMeansThatSrvThenDefaultPort) {
  auto p = plan({"pbx.test", std::nullopt, T::tcp, false, kAll});
  EXPECT_EQ(p.start, Plan::Start::srv);
  EXPECT_EQ(p.srv, (std::vector<SrvQuery>{{T::tcp, "_sip._tcp.pbx.test"}}));
  EXPECT_EQ(p.address_transport, T::tcp);
  EXPECT_EQ(p.address_port, 5060);
  auto tls = plan({"pbx.test.", std::nullopt, T::tls, false, kAll});
  EXPECT_EQ(tls.srv, (std::vector<SrvQuery>{{T::tls, "_sips._tcp.pbx.test"}}));
  EXPECT_EQ(tls.address_port, 5061);
}

TEST(DnsPlan, NeitherMeansNaptrThenUdpOrTlsOnDefaultPort) {
  auto p = plan({"provider.test", std::nullopt, std::nullopt, false, kAll});
  EXPECT_EQ(p.start, Plan::Start::naptr);
  EXPECT_EQ(p.address_transport, T::udp);
  EXPECT_EQ(p.address_port, 5060);
  auto sips = plan({"provider.test", std::nullopt, std::nullopt, true, kAll});
  EXPECT_EQ(sips.start, Plan::Start::naptr);
  EXPECT_EQ(sips.address_transport, T::tls);
  EXPECT_EQ(sips.address_port, 5061);
  // No UDP listener: the last resort is TCP, which we can send on.
  auto tcp_only = plan({"provider.test", std::nullopt, std::nullopt, false, {T::tcp}});
  EXPECT_EQ(tcp_only.address_transport, T::tcp);
}

TEST(DnsPlan, IpLiteralNeedsNoLookupBeyondAddresses) {
  EXPECT_EQ(plan({"192.0.2.1", std::nullopt, std::nullopt, false, kAll}).start, Plan::Start::address);
  EXPECT_EQ(plan({"[2001:db8::1]", std::nullopt, T::tcp, false, kAll}).start, Plan::Start::address);
}

TEST(DnsCacheKey, SeparatesWhatChangesTheAnswer) {
  Query base{"Provider.Test", std::nullopt, std::nullopt, false, {T::udp, T::tcp}};
  auto key = cache_key(base);
  EXPECT_EQ(key, "sip:provider.test via udp,tcp");
  Query same = base;
  same.host = "provider.test.";
  same.usable = {T::tcp, T::udp};
  EXPECT_EQ(cache_key(same), key);
  std::map<std::string, int> keys;
  for (const auto& q : {base, Query{"provider.test", 5060, std::nullopt, false, {T::udp, T::tcp}},
                 Query{"provider.test", std::nullopt, T::tcp, false, {T::udp, T::tcp}},
                 Query{"provider.test", std::nullopt, std::nullopt, true, {T::udp, T::tcp}},
                 Query{"provider.test", std::nullopt, std::nullopt, false, {T::udp}}})
    ++keys[cache_key(q)];
  EXPECT_EQ(keys.size(), 5u);
  EXPECT_EQ(cache_key({"p.test", 5061, T::tls, true, {}}), "sips:p.test:5061;transport=tls via udp,tcp,tls");
}

// A response to an SRV query for "_sip._udp.t" with two answers, TTLs 300 and 120.
std::vector<unsigned char> srv_response() {
  std::vector<unsigned char> m{0x12, 0x34, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0};
  for (std::string label : {"_sip", "_udp", "t"}) {
    m.push_back(static_cast<unsigned char>(label.size()));
    m.insert(m.end(), label.begin(), label.end());
  }
  m.insert(m.end(), {0, 0, 33, 0, 1});
  for (std::uint32_t ttl : {300u, 120u}) {
    m.insert(m.end(), {0xC0, 12, 0, 33, 0, 1});  // name: pointer to the question
    for (int shift : {24, 16, 8, 0}) m.push_back(static_cast<unsigned char>(ttl >> shift));
    m.insert(m.end(), {0, 9, 0, 10, 0, 0, 0x13, 0xC4, 1, 'a', 0});  // 10 0 5060 a.
  }
  return m;
}

TEST(DnsTtl, SmallestAnswerTtl) {
  auto m = srv_response();
  EXPECT_EQ(min_answer_ttl(m), 120u);
  m[7] = 0;  // no answers
  EXPECT_EQ(min_answer_ttl(m), std::nullopt);
}

TEST(DnsTtl, MalformedMessagesGiveNothing) {
  auto m = srv_response();
  EXPECT_EQ(min_answer_ttl(std::span(m).first(11)), std::nullopt);
  EXPECT_EQ(min_answer_ttl(std::span(m).first(m.size() - 1)), std::nullopt);  // last rdata cut short
  auto bad_label = m;
  bad_label[12] = 0x80;  // reserved label type
  EXPECT_EQ(min_answer_ttl(bad_label), std::nullopt);
  auto top_bit = m;
  top_bit[35] = 0x80;  // first answer's TTL with the top bit set counts as 0
  EXPECT_EQ(min_answer_ttl(top_bit), 0u);
}

TEST(DnsTtl, CacheTtlIsClamped) {
  using std::chrono::seconds;
  EXPECT_EQ(cache_ttl(120u, false), seconds(120));
  EXPECT_EQ(cache_ttl(0u, false), seconds(5));
  EXPECT_EQ(cache_ttl(86400u, false), seconds(3600));
  EXPECT_EQ(cache_ttl(std::nullopt, false), seconds(60));
  EXPECT_EQ(cache_ttl(3000u, true), seconds(5));
}

}  // namespace
}  // namespace sw::proxy::dns
