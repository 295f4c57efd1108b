// Writes a synthetic but realistic SIP capture of a requested size, for
// measuring `sipwitness analyze` (bench/analyze.sh). One PBX and its phones:
// registrations with 401 challenges and digest answers (real MD5 / SHA-256
// responses), calls with a 407 challenge, SDP, ringing, RTP, BYE, internal calls
// with the PBX's leg to the callee, external calls over a trunk the provider
// challenges, OPTIONS keep-alives both ways, and the failures sipwitness
// explains: wrong passwords, phones with no credentials, an offline phone the
// PBX qualifies, a backup registrar that never answers. Some phones use TCP
// (segments cut mid-message, the odd retransmission and reordering), some
// IPv6; video phones send INVITEs with big SDP in fragmented UDP datagrams.
//
//   make_capture --size-mb 100 --out capture.pcap [--seed 1] [--phones 3000]
//                [--rate 40] [--rtp-share 0.2] [--tcp-share 0.15] [--users-out users.yaml]
//
// MB are 10^6 bytes, as analyze's progress display counts them. Deterministic
// from the seed (the generator's own arithmetic, not std:: distributions).
// Prints what it wrote and the verdicts `sipwitness analyze` should give, in the
// form of analyze's own summary line.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "auth/digest.hpp"
#include "diag/capture/packet_builder.hpp"
#include "diag/capture/pcap_writer.hpp"

namespace {

using sw::capture::IpEndpoint;
namespace tcp_flag = sw::capture::tcp_flag;
using Micros = std::int64_t;  // capture time, microseconds since the epoch

constexpr Micros kMs = 1000, kSec = 1000 * kMs;
constexpr Micros kStart = 1772442000LL * kSec;  // 2026-03-02T09:00:00Z
constexpr std::size_t kMtu = 1500;
constexpr std::size_t kMss = 1448;
constexpr std::size_t kRecordOverhead = 16;  // pcap record header
constexpr std::size_t kRtpPayload = 160;     // 20 ms of G.711
constexpr const char* kDomain = "pbx.example.net";
constexpr const char* kRealm = "pbx.example.net";
constexpr const char* kTrunkRealm = "sip.carrier.example";
constexpr const char* kTrunkUser = "pbx-trunk-0042";
constexpr const char* kTrunkPassword = "Tr7nk!pass";
constexpr const char* kServer = "Asterisk PBX 20.5.2";

// ---------------------------------------------------------------- randomness

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t next() { return engine_(); }
  std::uint64_t below(std::uint64_t n) { return n ? next() % n : 0; }
  std::int64_t range(std::int64_t lo, std::int64_t hi) {  // inclusive
    return lo + static_cast<std::int64_t>(below(static_cast<std::uint64_t>(hi - lo + 1)));
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  bool chance(double p) { return unit() < p; }
  double exponential(double mean) { return -mean * std::log1p(-unit()); }
  std::string hex(std::size_t digits) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(digits);
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < digits; ++i) {
      if (i % 16 == 0) bits = next();
      out.push_back(kHex[bits & 0xf]);
      bits >>= 4;
    }
    return out;
  }
  template <class T>
  const T& pick(const std::vector<T>& v) {
    return v[below(v.size())];
  }

 private:
  std::mt19937_64 engine_;  // its output sequence is fixed by the standard
};

// ---------------------------------------------------------------- addresses

IpEndpoint v4(std::uint32_t addr, std::uint16_t port) {
  IpEndpoint e;
  e.addr[0] = static_cast<std::uint8_t>(addr >> 24);
  e.addr[1] = static_cast<std::uint8_t>(addr >> 16);
  e.addr[2] = static_cast<std::uint8_t>(addr >> 8);
  e.addr[3] = static_cast<std::uint8_t>(addr);
  e.port = port;
  return e;
}

IpEndpoint v6(std::uint32_t low, std::uint16_t port) {
  IpEndpoint e;
  e.v6 = true;
  const std::uint8_t prefix[] = {0x20, 0x01, 0x0d, 0xb8, 0x01, 0x00};  // 2001:db8:100::/48
  std::copy(std::begin(prefix), std::end(prefix), e.addr.begin());
  e.addr[12] = static_cast<std::uint8_t>(low >> 24);
  e.addr[13] = static_cast<std::uint8_t>(low >> 16);
  e.addr[14] = static_cast<std::uint8_t>(low >> 8);
  e.addr[15] = static_cast<std::uint8_t>(low);
  e.port = port;
  return e;
}

IpEndpoint with_port(IpEndpoint e, std::uint16_t port) {
  e.port = port;
  return e;
}

std::string host_of(const IpEndpoint& e) {
  auto s = e.to_string();
  return s.substr(0, s.rfind(':'));  // "10.1.0.7" or "[2001:db8:100::7]"
}

std::string sdp_addr(const IpEndpoint& e) {
  auto h = host_of(e);
  return e.v6 ? "IP6 " + h.substr(1, h.size() - 2) : "IP4 " + h;
}

// ---------------------------------------------------------------- the cast

const IpEndpoint kPbx = v4(0xcb00710a, 5060);        // 203.0.113.10:5060
const IpEndpoint kPbxV6 = v6(0x0000000a, 5060);      // [2001:db8:100::a]:5060
const IpEndpoint kBackup = v4(0xcb00710c, 5060);     // 203.0.113.12:5060, down
const IpEndpoint kCarrier = v4(0xc6336414, 5060);    // 198.51.100.20:5060, the trunk provider
const IpEndpoint kCarrierMedia = v4(0xc6336415, 0);  // 198.51.100.21

enum class Health : std::uint8_t { good, wrong_password, no_credentials, offline };

struct Phone {
  std::string user, password, display, ua;
  IpEndpoint sip;  // its SIP address (UDP socket or TCP client end)
  IpEndpoint pbx;  // the PBX address it talks to (v4 or v6)
  std::uint32_t media_addr_low = 0;
  bool tcp = false;
  bool video = false;   // big SDP: fragmented INVITEs over UDP
  bool sha256 = false;  // answers the SHA-256 challenge
  Health health = Health::good;
  int conn = -1;  // TCP connection index
  std::string reg_call_id;
  std::uint32_t reg_cseq = 1;
  std::string nonce;  // last nonce the PBX gave it (refreshes reuse it)
  std::uint32_t nc = 0;
};

struct TcpConn {
  IpEndpoint client, server;
  std::uint32_t seq[2] = {0, 0};  // next sequence number: [0] client->server, [1] server->client
  bool opened = false;            // handshake written, or the capture joined mid-stream
  bool handshake = false;         // opened with SYN/SYN-ACK/ACK in the capture
  bool sent_data[2] = {false, false};
};

// ---------------------------------------------------------------- SIP text

struct Request {
  std::string method, ruri, via, from, to, call_id, contact;
  std::uint32_t cseq = 1;
  std::vector<std::string> extra;  // full header lines, no CRLF
  std::string body, content_type;
};

std::string render(const Request& r) {
  std::string out;
  out.reserve(600 + r.body.size());
  out += r.method + " " + r.ruri + " SIP/2.0\r\n";
  out += "Via: " + r.via + "\r\n";
  out += "Max-Forwards: 70\r\n";
  out += "From: " + r.from + "\r\n";
  out += "To: " + r.to + "\r\n";
  out += "Call-ID: " + r.call_id + "\r\n";
  out += "CSeq: " + std::to_string(r.cseq) + " " + r.method + "\r\n";
  if (!r.contact.empty()) out += "Contact: " + r.contact + "\r\n";
  for (const auto& h : r.extra) out += h + "\r\n";
  if (!r.body.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\n\r\n";
  out += r.body;
  return out;
}

// A response to `r` (CSeq method `method`, for an ACK/CANCEL-less answer of the original).
std::string response(const Request& r, int code, std::string_view reason, const std::string& to_tag,
                     const std::vector<std::string>& extra = {}, const std::string& body = {},
                     const std::string& method = {}) {
  std::string out;
  out.reserve(500 + body.size());
  out += "SIP/2.0 " + std::to_string(code) + " " + std::string(reason) + "\r\n";
  out += "Via: " + r.via + "\r\n";
  out += "From: " + r.from + "\r\n";
  out += "To: " + r.to +
         (to_tag.empty() || r.to.find(";tag=") != std::string::npos ? "" : ";tag=" + to_tag) +
         "\r\n";
  out += "Call-ID: " + r.call_id + "\r\n";
  out += "CSeq: " + std::to_string(r.cseq) + " " + (method.empty() ? r.method : method) + "\r\n";
  for (const auto& h : extra) out += h + "\r\n";
  if (!body.empty()) out += "Content-Type: application/sdp\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

// The ACK of a non-2xx final response to `invite`: same branch and CSeq number,
// the response's To tag, no body; a phone's keeps its User-Agent (extra[0]).
Request ack_of(Request invite, const std::string& to_tag, bool keep_user_agent) {
  invite.method = "ACK";
  invite.to += ";tag=" + to_tag;
  invite.body.clear();
  invite.extra.resize(keep_user_agent ? std::min<std::size_t>(invite.extra.size(), 1) : 0);
  return invite;
}

std::string sdp(Rng& rng, const IpEndpoint& media, bool video, const std::string& user) {
  auto addr = sdp_addr(media);
  auto session = std::to_string(rng.range(100000, 999999999));
  std::string s = "v=0\r\no=" + user + " " + session + " " + session + " IN " + addr +
                  "\r\ns=" + (video ? "Video Call" : "-") + "\r\nc=IN " + addr + "\r\nt=0 0\r\n";
  s += "m=audio " + std::to_string(media.port) + (video ? " RTP/SAVPF" : " RTP/AVP") +
       " 9 0 8 18 101\r\n";
  s += "a=rtpmap:9 G722/8000\r\n"
       "a=rtpmap:0 PCMU/8000\r\n"
       "a=rtpmap:8 PCMA/8000\r\n"
       "a=rtpmap:18 G729/8000\r\n"
       "a=fmtp:18 annexb=no\r\n"
       "a=rtpmap:101 telephone-event/8000\r\n"
       "a=fmtp:101 0-16\r\n"
       "a=ptime:20\r\n";
  if (video) {
    auto candidates = [&](std::uint16_t port) {
      std::string c;
      for (int comp = 1; comp <= 2; ++comp) {
        auto p = std::to_string(port + comp - 1);
        c += "a=candidate:" + rng.hex(8) + " " + std::to_string(comp) + " udp 2130706431 " +
             host_of(media) + " " + p + " typ host\r\n";
        c += "a=candidate:" + rng.hex(8) + " " + std::to_string(comp) + " udp 1694498815 192.0.2." +
             std::to_string(rng.range(2, 250)) + " " + p + " typ srflx raddr " + host_of(media) +
             " rport " + p + "\r\n";
        c += "a=candidate:" + rng.hex(8) + " " + std::to_string(comp) +
             " udp 16777215 203.0.113.99 " + std::to_string(rng.range(40000, 60000)) +
             " typ relay raddr 192.0.2.1 rport " + p + "\r\n";
      }
      return c;
    };
    s += "a=rtcp-mux\r\na=ice-ufrag:" + rng.hex(8) + "\r\na=ice-pwd:" + rng.hex(24) + "\r\n";
    s += candidates(media.port);
    s += "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rng.hex(40) + "\r\n";
    s += "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + rng.hex(40) + "\r\n";
    s += "a=sendrecv\r\n";
    auto vport = static_cast<std::uint16_t>(media.port + 2);
    s += "m=video " + std::to_string(vport) + " RTP/SAVPF 96 97 98 99 100\r\nb=AS:2048\r\n";
    s += "a=rtpmap:96 H264/90000\r\n"
         "a=fmtp:96 profile-level-id=42e01f;packetization-mode=1\r\n"
         "a=rtpmap:97 H264/90000\r\n"
         "a=fmtp:97 profile-level-id=640028;packetization-mode=1\r\n"
         "a=rtpmap:98 VP8/90000\r\n"
         "a=rtpmap:99 H265/90000\r\n"
         "a=rtpmap:100 red/90000\r\n"
         "a=rtcp-fb:* nack\r\n"
         "a=rtcp-fb:* nack pli\r\n"
         "a=rtcp-fb:* ccm fir\r\n"
         "a=rtcp-fb:* goog-remb\r\n"
         "a=imageattr:* recv [x=[320:16:1920],y=[240:16:1080]] send "
         "[x=[320:16:1920],y=[240:16:1080]]\r\n";
    s += "a=ice-ufrag:" + rng.hex(8) + "\r\na=ice-pwd:" + rng.hex(24) + "\r\n";
    s += candidates(vport);
    s += "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + rng.hex(40) +
         "\r\na=rtcp-mux\r\na=sendrecv\r\n";
  } else {
    s += "a=sendrecv\r\n";
  }
  return s;
}

// ---------------------------------------------------------------- output

// A SIP message or a raw packet due at a capture time, or an RTP stream's next packet.
struct SipSend {
  IpEndpoint src, dst;
  int conn = -1;  // TCP connection, -1 for UDP
  std::string bytes;
};
struct RawPacket {
  std::string packet;
};
struct RtpStream {
  IpEndpoint src, dst;
  std::uint32_t ssrc = 0, timestamp = 0;
  std::uint16_t seq = 0;
  std::uint8_t payload_type = 0;
  std::uint32_t remaining = 0;
};
struct Event {
  Micros at = 0;
  std::uint64_t order = 0;  // ties in schedule order
  std::variant<SipSend, RawPacket, RtpStream> what;
};
struct Later {
  bool operator()(const Event& a, const Event& b) const {
    return a.at != b.at ? a.at > b.at : a.order > b.order;
  }
};

struct Totals {
  std::uint64_t bytes = 24;  // pcap file header
  std::uint64_t records = 0, sip_messages = 0, sip_udp = 0, sip_tcp = 0, fragmented = 0,
                fragments = 0;
  std::uint64_t tcp_segments = 0, tcp_split = 0, tcp_retransmitted = 0, tcp_reordered = 0;
  std::uint64_t rtp_packets = 0, keepalives = 0, sip_bytes = 0, noise_bytes = 0;
};

class Generator {
 public:
  Generator(std::uint64_t seed, const std::string& path) : rng_(seed), writer_(path) {}
  bool ok() const { return writer_.ok(); }
  const std::string& error() const { return writer_.error(); }

  void make_phones(std::size_t count, double tcp_share);
  void run(std::uint64_t target_bytes, double rate, double rtp_share);
  bool write_users(const std::string& path) const;
  void report(std::ostream& out, const std::string& path) const;
  bool flush() { return writer_.flush(); }

 private:
  // scenarios
  void scenario(Micros t);
  void register_phone(Micros t, Phone& p, bool refresh);
  void register_wrong_password(Micros t, Phone& p);
  void register_no_credentials(Micros t, Phone& p);
  void register_unanswered(Micros t, Phone& p);
  void options_from_phone(Micros t, Phone& p);
  void options_to_phone(Micros t, Phone& p, bool answered);
  enum class CallEnd : std::uint8_t { answered, no_answer, busy };
  void call(Micros t, Phone& caller, CallEnd how);
  void invite_wrong_password(Micros t, Phone& p);
  IpEndpoint media_of(const Phone& p);
  void keepalive(Micros t, Phone& p);

  // pieces
  Phone& pick_phone(Health h);
  Request phone_request(Phone& p, const std::string& method, const std::string& ruri,
                        const std::string& to_uri, const std::string& call_id,
                        const std::string& from_tag, std::uint32_t cseq);
  std::string challenge_headers(bool proxy, const std::string& realm, const std::string& nonce,
                                const std::string& opaque, bool offer_sha256,
                                bool stale = false) const;
  std::string credentials(bool proxy, const std::string& user, const std::string& password,
                          const std::string& realm, const std::string& nonce,
                          const std::string& opaque, const std::string& method,
                          const std::string& uri, bool sha256, std::uint32_t nc);
  Micros rtt(const Phone& p) const {
    return 4 * kMs + static_cast<Micros>(p.media_addr_low % 60) * kMs;
  }
  void send(Micros at, const IpEndpoint& src, const IpEndpoint& dst, int conn, std::string bytes);
  void send_phone(Micros at, const Phone& p, bool from_phone, std::string bytes) {
    send(at, from_phone ? p.sip : p.pbx, from_phone ? p.pbx : p.sip, p.conn, std::move(bytes));
  }
  void rtp(Micros at, const IpEndpoint& a, const IpEndpoint& b, Micros talk);
  void expect(const std::string& scenario, const std::string& verdict, int flows = 1) {
    ++scenarios_[scenario];
    verdicts_[verdict] += flows;
  }
  std::string tag() { return rng_.hex(10); }
  std::string branch() { return "z9hG4bK" + rng_.hex(16); }

  // output
  void emit(const Event& e);
  void emit_udp(Micros at, const SipSend& s);
  void emit_tcp(Micros at, const SipSend& s);
  void write(Micros at, const std::string& packet, bool noise);
  void schedule(Micros at, std::variant<SipSend, RawPacket, RtpStream> what, std::uint64_t bytes);

  Rng rng_;
  sw::capture::PcapWriter writer_;
  std::vector<Phone> phones_;
  std::vector<std::size_t> by_health_[4];
  std::vector<TcpConn> conns_;
  std::priority_queue<Event, std::vector<Event>, Later> events_;
  std::uint64_t order_ = 0;
  std::uint64_t pending_bytes_ = 0;  // scheduled, not yet written
  std::uint64_t scheduled_sip_ = 0, scheduled_noise_ = 0;
  double rtp_share_ = 0.2;
  Micros last_written_ = kStart;
  Micros first_written_ = 0;
  std::uint16_t ip_id_ = 1;
  Totals totals_;
  std::map<std::string, std::uint64_t> scenarios_, verdicts_;
};

// ---------------------------------------------------------------- phones

void Generator::make_phones(std::size_t count, double tcp_share) {
  static const std::vector<std::string> kNames = {
      "Alice Martin", "Bruno Keller", "Chiara Rossi", "Dev Patel",  "Emma Schulz", "Farid Haddad",
      "Grace Liu",    "Hugo Moreau",  "Ines Silva",   "Jonas Berg", "Kenji Sato",  "Lena Novak",
      "Marta Nowak",  "Nils Larsen",  "Olga Ivanova", "Pablo Ruiz", "Quinn Walsh", "Rosa Costa",
      "Sven Olsen",   "Tara Singh",   "Umar Khan",    "Vera Meyer", "Wei Zhang",   "Yara Nasser"};
  static const std::vector<std::string> kAgents = {"Yealink SIP-T46U 108.86.0.20",
                                                   "Yealink SIP-T54W 96.86.0.100",
                                                   "Grandstream GXP2170 1.0.11.23",
                                                   "Poly/PolyEdgeE450 8.0.4.4014",
                                                   "Cisco-CP8845/14.2.1",
                                                   "snom D785/10.1.159.12",
                                                   "Zoiper rv2.10.19.5",
                                                   "Linphone/5.2.0 (belle-sip/5.2.0)",
                                                   "MicroSIP/3.21.3",
                                                   "Fanvil X6U 2.12.1"};
  phones_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    Phone p;
    p.user = std::to_string(1000 + i);
    p.password = rng_.hex(4) + "-" + rng_.hex(6);
    p.display = kNames[i % kNames.size()];
    p.ua = rng_.pick(kAgents);
    auto low = static_cast<std::uint32_t>((1u << 16) + i * 3 + 1);  // 10.1.0.1, 10.1.0.4, ...
    p.media_addr_low = low;
    bool ipv6 = rng_.chance(0.05);
    if (ipv6) {
      p.sip = v6(low, 5060);
      p.pbx = kPbxV6;
    } else {
      p.tcp = rng_.chance(tcp_share);
      auto port = p.tcp              ? static_cast<std::uint16_t>(rng_.range(32768, 60999))
                  : rng_.chance(0.7) ? std::uint16_t{5060}
                                     : static_cast<std::uint16_t>(rng_.range(1024, 65000));
      p.sip = v4((10u << 24) | low, port);
      p.pbx = kPbx;
      p.video = !p.tcp && rng_.chance(0.08);
    }
    p.sha256 = rng_.chance(0.3);
    double h = rng_.unit();
    p.health = h < 0.03             ? Health::wrong_password
               : h < 0.045          ? Health::no_credentials
               : h < 0.07 && !p.tcp ? Health::offline
                                    : Health::good;
    p.reg_call_id = rng_.hex(24) + "@" + host_of(p.sip);
    p.reg_cseq = static_cast<std::uint32_t>(rng_.range(1, 5000));
    p.nonce = rng_.hex(32);  // from a registration before the capture began
    p.nc = static_cast<std::uint32_t>(rng_.range(1, 20));
    if (p.tcp) {
      TcpConn c;
      c.client = p.sip;
      c.server = p.pbx;
      c.seq[0] = static_cast<std::uint32_t>(rng_.next());
      c.seq[1] = static_cast<std::uint32_t>(rng_.next());
      c.handshake = rng_.chance(0.5);
      p.conn = static_cast<int>(conns_.size());
      conns_.push_back(c);
    }
    by_health_[static_cast<int>(p.health)].push_back(i);
    phones_.push_back(std::move(p));
  }
  // Every kind of phone exists at least once, however small the population.
  for (int h = 1; h < 4; ++h)
    if (by_health_[h].empty())
      by_health_[h].push_back(by_health_[0].empty() ? 0 : by_health_[0].back());
  if (by_health_[0].empty()) by_health_[0].push_back(0);
}

Phone& Generator::pick_phone(Health h) {
  return phones_[rng_.pick(by_health_[static_cast<int>(h)])];
}

bool Generator::write_users(const std::string& path) const {
  std::ofstream out(path);
  out << "# Known credentials of the synthetic capture (make_capture), for "
         "--known-credentials.\nusers:\n";
  for (const auto& p : phones_)
    out << "  - { username: \"" << p.user << "\", realm: " << kRealm << ", password: \""
        << p.password << "\" }\n";
  out << "  - { username: \"" << kTrunkUser << "\", realm: " << kTrunkRealm << ", password: \""
      << kTrunkPassword << "\" }\n";
  return static_cast<bool>(out);
}

// ---------------------------------------------------------------- digest

std::string Generator::challenge_headers(bool proxy, const std::string& realm,
                                         const std::string& nonce, const std::string& opaque,
                                         bool offer_sha256, bool stale) const {
  std::string name = proxy ? "Proxy-Authenticate: " : "WWW-Authenticate: ";
  auto one = [&](const char* algorithm) {
    return name + "Digest realm=\"" + realm + "\",nonce=\"" + nonce + "\",opaque=\"" + opaque +
           "\",algorithm=" + algorithm + ",qop=\"auth\"" + (stale ? ",stale=true" : "");
  };
  // RFC 8760: the preferred algorithm first, one header each, the same nonce.
  return offer_sha256 ? one("SHA-256") + "\r\n" + one("MD5") : one("MD5");
}

std::string Generator::credentials(bool proxy, const std::string& user, const std::string& password,
                                   const std::string& realm, const std::string& nonce,
                                   const std::string& opaque, const std::string& method,
                                   const std::string& uri, bool sha256, std::uint32_t nc) {
  using sw::auth::Algorithm;
  auto algorithm = sha256 ? Algorithm::sha256 : Algorithm::md5;
  auto ha1 = sw::auth::compute_ha1(algorithm, user, realm, password);
  char nc_text[9];
  std::snprintf(nc_text, sizeof nc_text, "%08x", nc);
  auto cnonce = rng_.hex(16);
  sw::auth::DigestInput in{algorithm,           ha1,    nonce, cnonce, nc_text,
                           sw::auth::Qop::auth, method, uri,   {}};
  auto response_hex = sw::auth::compute_response(in);
  return std::string(proxy ? "Proxy-Authorization: " : "Authorization: ") + "Digest username=\"" +
         user + "\",realm=\"" + realm + "\",nonce=\"" + nonce + "\",uri=\"" + uri +
         "\",response=\"" + response_hex + "\",algorithm=" + (sha256 ? "SHA-256" : "MD5") +
         ",cnonce=\"" + cnonce + "\",opaque=\"" + opaque + "\",qop=auth,nc=" + nc_text;
}

// ---------------------------------------------------------------- scenarios

Request Generator::phone_request(Phone& p, const std::string& method, const std::string& ruri,
                                 const std::string& to_uri, const std::string& call_id,
                                 const std::string& from_tag, std::uint32_t cseq) {
  Request r;
  r.method = method;
  r.ruri = ruri;
  r.via = std::string("SIP/2.0/") + (p.tcp ? "TCP " : "UDP ") + p.sip.to_string() +
          ";branch=" + branch() + ";rport";
  r.from = "\"" + p.display + "\" <sip:" + p.user + "@" + kDomain + ">;tag=" + from_tag;
  r.to = "<" + to_uri + ">";
  r.call_id = call_id;
  r.cseq = cseq;
  r.contact = "<sip:" + p.user + "@" + p.sip.to_string() + (p.tcp ? ";transport=tcp" : "") + ">";
  r.extra = {"User-Agent: " + p.ua,
             "Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, OPTIONS, INFO, UPDATE, MESSAGE"};
  return r;
}

void Generator::register_phone(Micros t, Phone& p, bool refresh) {
  auto ruri = std::string("sip:") + kDomain;
  auto aor = "sip:" + p.user + "@" + kDomain;
  auto from_tag = tag();
  auto r = phone_request(p, "REGISTER", ruri, aor, p.reg_call_id, from_tag, ++p.reg_cseq);
  r.extra.push_back("Expires: 3600");
  r.extra.push_back("Supported: path, gruu, outbound");
  auto opaque = rng_.hex(16);
  auto rt = rtt(p);
  bool challenged = true;
  if (refresh) {
    // The nonce from the last registration: accepted, or stale (re-challenged).
    r.extra.push_back(credentials(false, p.user, p.password, kRealm, p.nonce, opaque, "REGISTER",
                                  ruri, p.sha256, ++p.nc));
    challenged = rng_.chance(0.2);
  }
  send_phone(t, p, true, render(r));
  t += rt / 2 + rng_.range(1, 4) * kMs;
  if (challenged) {
    p.nonce = rng_.hex(32);
    p.nc = 0;
    send_phone(t, p, false,
               response(r, 401, "Unauthorized", tag(),
                        {challenge_headers(false, kRealm, p.nonce, opaque, true, refresh),
                         "Server: " + std::string(kServer)}));
    t += rt / 2 + rng_.range(5, 40) * kMs;
    auto again = phone_request(p, "REGISTER", ruri, aor, p.reg_call_id, from_tag, ++p.reg_cseq);
    again.extra.push_back("Expires: 3600");
    again.extra.push_back(credentials(false, p.user, p.password, kRealm, p.nonce, opaque,
                                      "REGISTER", ruri, p.sha256, ++p.nc));
    send_phone(t, p, true, render(again));
    t += rt / 2 + rng_.range(1, 4) * kMs;
    r = again;
  }
  send_phone(t, p, false,
             response(r, 200, "OK", tag(),
                      {"Contact: " + r.contact + ";expires=3600",
                       "Date: Mon, 02 Mar 2026 09:00:00 GMT", "Server: " + std::string(kServer)}));
  expect(refresh ? (challenged ? "register_refresh_stale" : "register_refresh") : "register",
         challenged ? "ok_after_challenge" : "ok");
}

void Generator::register_wrong_password(Micros t, Phone& p) {
  auto ruri = std::string("sip:") + kDomain;
  auto aor = "sip:" + p.user + "@" + kDomain;
  auto from_tag = tag();
  auto opaque = rng_.hex(16);
  auto rt = rtt(p);
  auto attempts = rng_.range(2, 4);
  bool forbidden = rng_.chance(0.3) && attempts >= 3;
  auto wrong = p.password + "0";  // the old password, still in the phone
  std::string nonce;
  for (std::int64_t i = 0; i <= attempts; ++i) {
    auto r = phone_request(p, "REGISTER", ruri, aor, p.reg_call_id, from_tag, ++p.reg_cseq);
    r.extra.push_back("Expires: 3600");
    if (i > 0)
      r.extra.push_back(
          credentials(false, p.user, wrong, kRealm, nonce, opaque, "REGISTER", ruri, p.sha256, 1));
    send_phone(t, p, true, render(r));
    t += rt / 2 + rng_.range(1, 4) * kMs;
    if (forbidden && i == attempts) {
      send_phone(t, p, false,
                 response(r, 403, "Forbidden", tag(), {"Server: " + std::string(kServer)}));
      break;
    }
    nonce = rng_.hex(32);
    send_phone(t, p, false,
               response(r, 401, "Unauthorized", tag(),
                        {challenge_headers(false, kRealm, nonce, opaque, true),
                         "Server: " + std::string(kServer)}));
    t += rt / 2 + rng_.range(5, 40) * kMs;
  }
  // Without a 403 the phone gives up after its last attempt (silence).
  expect(forbidden ? "register_wrong_password_403" : "register_wrong_password",
         forbidden ? "forbidden" : "wrong_password");
}

void Generator::register_no_credentials(Micros t, Phone& p) {
  auto ruri = std::string("sip:") + kDomain;
  auto r = phone_request(p, "REGISTER", ruri, "sip:" + p.user + "@" + kDomain, p.reg_call_id, tag(),
                         ++p.reg_cseq);
  r.extra.push_back("Expires: 3600");
  send_phone(t, p, true, render(r));
  t += rtt(p) / 2 + rng_.range(1, 4) * kMs;
  send_phone(t, p, false,
             response(r, 401, "Unauthorized", tag(),
                      {challenge_headers(false, kRealm, rng_.hex(32), rng_.hex(16), true),
                       "Server: " + std::string(kServer)}));
  expect("register_no_credentials", "no_credentials");
}

// RFC 3261 timer E: retransmissions at 0.5, 1, 2, 4, 4, ... s until timer F (32 s).
template <class F>
void retransmit(Micros t, F&& again) {
  Micros interval = 500 * kMs, elapsed = 0;
  while (elapsed + interval < 32 * kSec) {
    elapsed += interval;
    again(t + elapsed);
    interval = std::min<Micros>(interval * 2, 4 * kSec);
  }
}

void Generator::register_unanswered(Micros t, Phone& p) {
  // The phone's secondary registrar is down.
  auto ruri = std::string("sip:backup.") + kDomain;
  if (p.sip.v6) return options_from_phone(t, p);  // the backup has no IPv6 address
  auto r = phone_request(p, "REGISTER", ruri, "sip:" + p.user + "@backup." + kDomain,
                         rng_.hex(24) + "@" + host_of(p.sip), tag(), 1);
  r.extra.push_back("Expires: 3600");
  // Over UDP even for a phone whose primary registrar is on TCP.
  auto src = with_port(p.sip, p.tcp ? static_cast<std::uint16_t>(5060) : p.sip.port);
  r.via = std::string("SIP/2.0/UDP ") + src.to_string() + ";branch=" + branch() + ";rport";
  auto bytes = render(r);
  send(t, src, kBackup, -1, bytes);
  retransmit(t, [&](Micros at) { send(at, src, kBackup, -1, bytes); });
  expect("register_unanswered", "unanswered");
}

void Generator::options_from_phone(Micros t, Phone& p) {
  auto r = phone_request(p, "OPTIONS", std::string("sip:") + kDomain, std::string("sip:") + kDomain,
                         rng_.hex(20) + "@" + host_of(p.sip), tag(), 1);
  r.extra.push_back("Accept: application/sdp");
  send_phone(t, p, true, render(r));
  send_phone(t + rtt(p) / 2 + rng_.range(0, 2) * kMs, p, false,
             response(r, 200, "OK", tag(),
                      {"Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, "
                       "PUBLISH, MESSAGE",
                       "Accept: application/sdp", "Server: " + std::string(kServer)}));
  expect("options_keepalive", "ok");
}

void Generator::options_to_phone(Micros t, Phone& p, bool answered) {
  // The PBX qualifies the contact it has for the phone.
  Request r;
  r.method = "OPTIONS";
  r.ruri = "sip:" + p.user + "@" + p.sip.to_string() + (p.tcp ? ";transport=tcp" : "");
  r.via = std::string("SIP/2.0/") + (p.tcp ? "TCP " : "UDP ") + p.pbx.to_string() +
          ";branch=" + branch() + ";rport";
  r.from = std::string("<sip:asterisk@") + kDomain + ">;tag=" + tag();
  r.to = "<" + r.ruri + ">";
  r.call_id = rng_.hex(32);
  r.cseq = static_cast<std::uint32_t>(rng_.range(100, 60000));
  r.contact = "<sip:asterisk@" + p.pbx.to_string() + ">";
  r.extra = {"User-Agent: " + std::string(kServer)};
  auto bytes = render(r);
  send_phone(t, p, false, bytes);
  if (answered) {
    send_phone(t + rtt(p) / 2 + rng_.range(0, 3) * kMs, p, true,
               response(r, 200, "OK", tag(), {"User-Agent: " + p.ua}));
    expect("options_qualify", "ok");
  } else {
    retransmit(t, [&](Micros at) { send_phone(at, p, false, bytes); });
    expect("options_qualify_unanswered", "unanswered");
  }
}

void Generator::keepalive(Micros t, Phone& p) {
  if (p.tcp) return;
  send_phone(t, p, true, "\r\n\r\n");
  ++totals_.keepalives;
}

void Generator::rtp(Micros at, const IpEndpoint& a, const IpEndpoint& b, Micros talk) {
  // As many 20 ms packets as keep non-SIP bytes near their share of the file,
  // up to the whole conversation.
  constexpr std::uint64_t kPacket = kRtpPayload + 12 + 28 + kRecordOverhead;
  double want = rtp_share_ / (1.0 - rtp_share_) * static_cast<double>(scheduled_sip_) -
                static_cast<double>(scheduled_noise_);
  if (want <= 0) return;
  auto packets = std::min<std::uint64_t>(static_cast<std::uint64_t>(want) / (2 * kPacket),
                                         static_cast<std::uint64_t>(talk / (20 * kMs)));
  if (packets == 0) return;
  for (int dir = 0; dir < 2; ++dir) {
    RtpStream s;
    s.src = dir ? b : a;
    s.dst = dir ? a : b;
    s.ssrc = static_cast<std::uint32_t>(rng_.next());
    s.seq = static_cast<std::uint16_t>(rng_.next());
    s.timestamp = static_cast<std::uint32_t>(rng_.next());
    s.payload_type = rng_.chance(0.5) ? 0 : 8;
    s.remaining = static_cast<std::uint32_t>(packets);
    schedule(at + rng_.range(0, 19) * kMs, s, 0);
  }
  scheduled_noise_ += 2 * packets * kPacket;
  pending_bytes_ += 2 * packets * kPacket;
}

// A phone's RTP address for a new call: its media host, a fresh even port.
IpEndpoint Generator::media_of(const Phone& p) {
  auto media = p.sip.v6 ? v6(p.media_addr_low, 0) : v4((10u << 24) | p.media_addr_low, 0);
  media.port = static_cast<std::uint16_t>(10000 + 2 * rng_.range(0, 4999));
  return media;
}

void Generator::call(Micros t, Phone& a, CallEnd how) {
  // The caller's leg: INVITE, 407, ACK, INVITE with credentials.
  bool internal = rng_.chance(0.6);
  Phone* b = nullptr;
  std::string target;
  if (internal) {
    b = &pick_phone(Health::good);
    if (b == &a) internal = false;
  }
  if (internal)
    target = b->user;
  else
    target = "+4930" + std::to_string(rng_.range(1000000, 9999999));
  auto ruri = "sip:" + target + "@" + kDomain;
  auto call_id = rng_.hex(24) + "@" + host_of(a.sip);
  auto from_tag = tag();
  auto cseq = static_cast<std::uint32_t>(rng_.range(1, 200));
  auto a_media = media_of(a);
  auto offer = sdp(rng_, a_media, a.video, a.user);
  auto rt = rtt(a);
  auto invite = phone_request(a, "INVITE", ruri, ruri, call_id, from_tag, cseq);
  invite.extra.push_back("Supported: replaces, timer, 100rel");
  invite.extra.push_back("Session-Expires: 1800");
  invite.body = offer;
  invite.content_type = "application/sdp";
  send_phone(t, a, true, render(invite));
  t += rt / 2 + 1 * kMs;
  send_phone(t, a, false, response(invite, 100, "Trying", {}, {"Server: " + std::string(kServer)}));
  auto nonce = rng_.hex(32), opaque = rng_.hex(16);
  t += rng_.range(1, 3) * kMs;
  auto pbx_tag = tag();
  send_phone(t, a, false,
             response(invite, 407, "Proxy Authentication Required", pbx_tag,
                      {challenge_headers(true, kRealm, nonce, opaque, true),
                       "Server: " + std::string(kServer)}));
  t += rt / 2 + rng_.range(2, 30) * kMs;
  send_phone(t, a, true, render(ack_of(invite, pbx_tag, true)));
  invite.cseq = ++cseq;
  invite.via = std::string("SIP/2.0/") + (a.tcp ? "TCP " : "UDP ") + a.sip.to_string() +
               ";branch=" + branch() + ";rport";
  invite.extra.push_back(
      credentials(true, a.user, a.password, kRealm, nonce, opaque, "INVITE", ruri, a.sha256, 1));
  t += rng_.range(1, 5) * kMs;
  send_phone(t, a, true, render(invite));
  t += rt / 2 + 1 * kMs;
  send_phone(t, a, false, response(invite, 100, "Trying", {}, {"Server: " + std::string(kServer)}));
  expect(how == CallEnd::answered ? "call_answered"
         : how == CallEnd::busy   ? "call_busy"
                                  : "call_no_answer",
         "ok_after_challenge");

  // The PBX's leg to the callee (internal) or through the trunk (external).
  auto pbx_media = v4(0xcb00710a, static_cast<std::uint16_t>(10000 + 2 * rng_.range(0, 9999)));
  auto b_call_id = rng_.hex(32);
  auto b_tag = tag();
  Request leg;
  leg.method = "INVITE";
  leg.call_id = b_call_id;
  leg.cseq = 102;
  leg.body = sdp(rng_, pbx_media, false, "asterisk");
  leg.content_type = "application/sdp";
  leg.extra = {"Supported: 100rel, timer, replaces, norefersub",
               "User-Agent: " + std::string(kServer)};
  Micros b_rt = internal ? rtt(*b) : 30 * kMs;
  IpEndpoint b_media;
  std::string b_to_tag = tag();
  auto send_leg = [&](Micros at, bool from_pbx, std::string bytes) {
    if (internal)
      send_phone(at, *b, !from_pbx, std::move(bytes));
    else
      send(at, from_pbx ? kPbx : kCarrier, from_pbx ? kCarrier : kPbx, -1, std::move(bytes));
  };
  t += rng_.range(1, 5) * kMs;
  if (internal) {
    leg.ruri = "sip:" + b->user + "@" + b->sip.to_string() + (b->tcp ? ";transport=tcp" : "");
    leg.via = std::string("SIP/2.0/") + (b->tcp ? "TCP " : "UDP ") + b->pbx.to_string() +
              ";branch=" + branch() + ";rport";
    leg.from = "\"" + a.display + "\" <sip:" + a.user + "@" + kDomain + ">;tag=" + b_tag;
    leg.to = "<sip:" + b->user + "@" + kDomain + ">";
    leg.contact = "<sip:asterisk@" + b->pbx.to_string() + ">";
    if (b->pbx.v6) {
      pbx_media = v6(0x0000000a, pbx_media.port);
      leg.body = sdp(rng_, pbx_media, false, "asterisk");
    }
    b_media = b->sip.v6 ? v6(b->media_addr_low, 0) : v4((10u << 24) | b->media_addr_low, 0);
    b_media.port = static_cast<std::uint16_t>(10000 + 2 * rng_.range(0, 4999));
    send_leg(t, true, render(leg));
    t += b_rt / 2 + 1 * kMs;
    send_leg(t, false, response(leg, 100, "Trying", {}, {"User-Agent: " + b->ua}));
    expect(how == CallEnd::answered ? "call_answered_callee_leg"
           : how == CallEnd::busy   ? "call_busy_callee_leg"
                                    : "call_no_answer_callee_leg",
           "ok");
  } else {
    // The trunk: the carrier challenges the PBX too.
    leg.ruri = "sip:" + target + "@" + kCarrier.to_string();
    leg.via = "SIP/2.0/UDP " + kPbx.to_string() + ";branch=" + branch() + ";rport";
    leg.from = "<sip:" + std::string(kTrunkUser) + "@" + kTrunkRealm + ">;tag=" + b_tag;
    leg.to = "<sip:" + target + "@" + kTrunkRealm + ">";
    leg.contact = "<sip:" + std::string(kTrunkUser) + "@" + kPbx.to_string() + ">";
    leg.extra.push_back("P-Asserted-Identity: <sip:+4930555" + a.user + "@" + kDomain + ">");
    b_media = with_port(kCarrierMedia, static_cast<std::uint16_t>(20000 + 2 * rng_.range(0, 9999)));
    send_leg(t, true, render(leg));
    t += b_rt / 2;
    send_leg(t, false, response(leg, 100, "Trying", {}));
    auto trunk_nonce = rng_.hex(40), trunk_opaque = rng_.hex(8);
    auto carrier_tag = tag();
    t += 2 * kMs;
    send_leg(t, false,
             response(leg, 407, "Proxy Authentication Required", carrier_tag,
                      {challenge_headers(true, kTrunkRealm, trunk_nonce, trunk_opaque, false)}));
    t += b_rt / 2 + 1 * kMs;
    send_leg(t, true, render(ack_of(leg, carrier_tag, false)));
    leg.cseq = 103;
    leg.via = "SIP/2.0/UDP " + kPbx.to_string() + ";branch=" + branch() + ";rport";
    leg.extra.push_back(credentials(true, kTrunkUser, kTrunkPassword, kTrunkRealm, trunk_nonce,
                                    trunk_opaque, "INVITE", leg.ruri, false, 1));
    t += 1 * kMs;
    send_leg(t, true, render(leg));
    t += b_rt / 2;
    send_leg(t, false, response(leg, 100, "Trying", {}));
    expect(how == CallEnd::answered ? "call_answered_trunk_leg"
           : how == CallEnd::busy   ? "call_busy_trunk_leg"
                                    : "call_no_answer_trunk_leg",
           "ok_after_challenge");
  }
  std::string b_ua = internal ? "User-Agent: " + b->ua : "Server: Carrier SBC 7.4";
  auto leg_contact =
      "Contact: <sip:" +
      (internal ? b->user + "@" + b->sip.to_string() : target + "@" + kCarrier.to_string()) + ">";
  auto caller_contact = "Contact: <sip:" + target + "@" + a.pbx.to_string() + ">";

  if (how == CallEnd::busy) {
    t += rng_.range(50, 400) * kMs;
    send_leg(t, false, response(leg, 486, "Busy Here", b_to_tag, {b_ua}));
    t += b_rt / 2;
    send_leg(t, true, render(ack_of(leg, b_to_tag, false)));
    t += 1 * kMs;
    send_phone(t, a, false,
               response(invite, 486, "Busy Here", pbx_tag, {"Server: " + std::string(kServer)}));
    t += rt / 2 + 1 * kMs;
    send_phone(t, a, true, render(ack_of(invite, pbx_tag, true)));
    return;
  }

  // Ringing.
  t += rng_.range(40, 300) * kMs;
  send_leg(t, false, response(leg, 180, "Ringing", b_to_tag, {leg_contact, b_ua}));
  t += 1 * kMs;
  send_phone(t, a, false,
             response(invite, 180, "Ringing", pbx_tag,
                      {caller_contact, "Server: " + std::string(kServer)}));
  if (how == CallEnd::no_answer) {
    bool caller_cancels = rng_.chance(0.6);
    t += caller_cancels ? rng_.range(3, 25) * kSec : 30 * kSec;
    if (caller_cancels) {
      auto cancel = invite;
      cancel.method = "CANCEL";
      cancel.body.clear();
      cancel.extra.resize(1);
      send_phone(t, a, true, render(cancel));
      t += rt / 2;
      send_phone(t, a, false, response(cancel, 200, "OK", pbx_tag));
    }
    t += 1 * kMs;
    auto cancel_b = leg;
    cancel_b.method = "CANCEL";
    cancel_b.body.clear();
    cancel_b.extra.clear();
    send_leg(t, true, render(cancel_b));
    t += b_rt / 2;
    send_leg(t, false, response(cancel_b, 200, "OK", b_to_tag));
    t += 1 * kMs;
    send_leg(t, false, response(leg, 487, "Request Terminated", b_to_tag, {b_ua}));
    t += b_rt / 2;
    send_leg(t, true, render(ack_of(leg, b_to_tag, false)));
    t += 1 * kMs;
    if (caller_cancels)
      send_phone(t, a, false, response(invite, 487, "Request Terminated", pbx_tag));
    else
      send_phone(t, a, false,
                 response(invite, 480, "Temporarily Unavailable", pbx_tag,
                          {"Reason: Q.850;cause=19;text=\"NO_ANSWER\""}));
    t += rt / 2 + 1 * kMs;
    send_phone(t, a, true, render(ack_of(invite, pbx_tag, true)));
    return;
  }

  // Answered: 200 with SDP both legs, ACKs, media, BYE.
  t += rng_.range(2, 15) * kSec;
  auto b_answer = sdp(rng_, b_media, false, internal ? b->user : "carrier");
  send_leg(t, false, response(leg, 200, "OK", b_to_tag, {leg_contact, b_ua}, b_answer));
  t += b_rt / 2;
  {
    auto ack = leg;
    ack.method = "ACK";
    ack.ruri = leg_contact.substr(10, leg_contact.size() - 11);
    ack.to += ";tag=" + b_to_tag;
    ack.via = leg.via.substr(0, leg.via.find(";branch=")) + ";branch=" + branch() + ";rport";
    ack.body.clear();
    ack.extra.clear();
    send_leg(t, true, render(ack));
  }
  t += 1 * kMs;
  auto pbx_media_a = a.sip.v6 ? v6(0x0000000a, pbx_media.port) : v4(0xcb00710a, pbx_media.port);
  send_phone(
      t, a, false,
      response(invite, 200, "OK", pbx_tag, {caller_contact, "Server: " + std::string(kServer)},
               sdp(rng_, pbx_media_a, false, "asterisk")));
  t += rt / 2 + 2 * kMs;
  auto in_dialog = [&](Request r, const std::string& method, const std::string& ruri_in_dialog,
                       const std::string& to_tag) {
    r.method = method;
    r.ruri = ruri_in_dialog;
    r.to += ";tag=" + to_tag;
    r.body.clear();
    r.extra.resize(std::min<std::size_t>(r.extra.size(), 1));
    return r;
  };
  auto a_ack = in_dialog(invite, "ACK", "sip:" + target + "@" + a.pbx.to_string(), pbx_tag);
  a_ack.via = a_ack.via.substr(0, a_ack.via.find(";branch=")) + ";branch=" + branch() + ";rport";
  send_phone(t, a, true, render(a_ack));

  auto talk = static_cast<Micros>(rng_.range(8, 240)) * kSec;
  rtp(t + 20 * kMs, a_media, pbx_media_a, talk);
  rtp(t + 20 * kMs, pbx_media, b_media, talk);
  t += talk;
  // The caller hangs up more often than not.
  bool caller_hangs_up = rng_.chance(0.6);
  if (caller_hangs_up) {
    auto bye = in_dialog(invite, "BYE", "sip:" + target + "@" + a.pbx.to_string(), pbx_tag);
    bye.cseq = ++cseq;
    bye.via = bye.via.substr(0, bye.via.find(";branch=")) + ";branch=" + branch() + ";rport";
    send_phone(t, a, true, render(bye));
    t += rt / 2;
    send_phone(t, a, false, response(bye, 200, "OK", {}));
    t += 1 * kMs;
    auto bye_b = in_dialog(leg, "BYE", leg_contact.substr(10, leg_contact.size() - 11), b_to_tag);
    bye_b.cseq = leg.cseq + 1;
    bye_b.via = leg.via.substr(0, leg.via.find(";branch=")) + ";branch=" + branch() + ";rport";
    send_leg(t, true, render(bye_b));
    t += b_rt / 2;
    send_leg(t, false, response(bye_b, 200, "OK", {}));
  } else {
    // The callee's side hangs up: its BYE comes with the tags swapped.
    Request bye_b;
    bye_b.method = "BYE";
    bye_b.ruri = leg.contact.substr(1, leg.contact.size() - 2);
    bye_b.via = internal ? std::string("SIP/2.0/") + (b->tcp ? "TCP " : "UDP ") +
                               b->sip.to_string() + ";branch=" + branch() + ";rport"
                         : "SIP/2.0/UDP " + kCarrier.to_string() + ";branch=" + branch();
    bye_b.from = leg.to + ";tag=" + b_to_tag;
    bye_b.to = leg.from;
    bye_b.call_id = leg.call_id;
    bye_b.cseq = static_cast<std::uint32_t>(rng_.range(1, 100));
    bye_b.extra = {internal ? b_ua : "User-Agent: Carrier SBC 7.4"};
    send_leg(t, false, render(bye_b));
    t += b_rt / 2;
    send_leg(t, true, response(bye_b, 200, "OK", {}));
    t += 1 * kMs;
    Request bye;
    bye.method = "BYE";
    bye.ruri = invite.contact.substr(1, invite.contact.size() - 2);
    bye.via = std::string("SIP/2.0/") + (a.tcp ? "TCP " : "UDP ") + a.pbx.to_string() +
              ";branch=" + branch() + ";rport";
    bye.from = invite.to + ";tag=" + pbx_tag;
    bye.to = invite.from;
    bye.call_id = invite.call_id;
    bye.cseq = static_cast<std::uint32_t>(rng_.range(1, 100));
    bye.extra = {"User-Agent: " + std::string(kServer)};
    send_phone(t, a, false, render(bye));
    t += rt / 2;
    send_phone(t, a, true, response(bye, 200, "OK", {}));
  }
}

void Generator::invite_wrong_password(Micros t, Phone& p) {
  auto target = std::to_string(1000 + rng_.range(0, static_cast<std::int64_t>(phones_.size()) - 1));
  auto ruri = "sip:" + target + "@" + kDomain;
  auto call_id = rng_.hex(24) + "@" + host_of(p.sip);
  auto from_tag = tag();
  auto cseq = static_cast<std::uint32_t>(rng_.range(1, 200));
  auto body = sdp(rng_, media_of(p), p.video, p.user);
  auto rt = rtt(p);
  auto attempts = rng_.range(1, 2);
  std::string nonce, opaque = rng_.hex(16);
  for (std::int64_t i = 0; i <= attempts; ++i) {
    auto invite = phone_request(p, "INVITE", ruri, ruri, call_id, from_tag, cseq++);
    invite.body = body;
    invite.content_type = "application/sdp";
    if (i > 0)
      invite.extra.push_back(credentials(true, p.user, p.password + "0", kRealm, nonce, opaque,
                                         "INVITE", ruri, p.sha256, 1));
    send_phone(t, p, true, render(invite));
    t += rt / 2 + 1 * kMs;
    send_phone(t, p, false, response(invite, 100, "Trying", {}));
    t += 2 * kMs;
    nonce = rng_.hex(32);
    auto pbx_tag = tag();
    send_phone(t, p, false,
               response(invite, 407, "Proxy Authentication Required", pbx_tag,
                        {challenge_headers(true, kRealm, nonce, opaque, true),
                         "Server: " + std::string(kServer)}));
    t += rt / 2 + rng_.range(2, 30) * kMs;
    send_phone(t, p, true, render(ack_of(invite, pbx_tag, true)));
    t += rng_.range(1, 5) * kMs;
  }
  expect("invite_wrong_password", "wrong_password");
}

// One scenario starting at t, on a phone that fits it. The weights are shares
// of scenarios (not of bytes): a busy PBX's mix of refreshes, keep-alives and
// calls, with a few per cent of failures.
void Generator::scenario(Micros t) {
  enum class Kind : std::uint8_t {
    register_refresh,
    register_first,
    options_from_phone,
    options_to_phone,
    call_answered,
    call_no_answer,
    call_busy,
    register_wrong_password,
    invite_wrong_password,
    register_no_credentials,
    qualify_offline,
    register_backup_down,
    crlf_keepalive
  };
  static const std::vector<std::pair<Kind, double>> kMix = {
      {Kind::register_refresh, 22},     {Kind::register_first, 8},
      {Kind::options_from_phone, 25},   {Kind::options_to_phone, 12},
      {Kind::call_answered, 14},        {Kind::call_no_answer, 3},
      {Kind::call_busy, 1.5},           {Kind::register_wrong_password, 3},
      {Kind::invite_wrong_password, 1}, {Kind::register_no_credentials, 1.5},
      {Kind::qualify_offline, 2},       {Kind::register_backup_down, 0.5},
      {Kind::crlf_keepalive, 6}};
  double total = 0;
  for (const auto& [kind, weight] : kMix) total += weight;
  double x = rng_.unit() * total;
  Kind chosen = kMix.back().first;
  for (const auto& [kind, weight] : kMix) {
    if (x < weight) {
      chosen = kind;
      break;
    }
    x -= weight;
  }
  switch (chosen) {
    case Kind::register_refresh:
      return register_phone(t, pick_phone(Health::good), true);
    case Kind::register_first:
      return register_phone(t, pick_phone(Health::good), false);
    case Kind::options_from_phone:
      return options_from_phone(t, pick_phone(Health::good));
    case Kind::options_to_phone:
      return options_to_phone(t, pick_phone(Health::good), true);
    case Kind::call_answered:
      return call(t, pick_phone(Health::good), CallEnd::answered);
    case Kind::call_no_answer:
      return call(t, pick_phone(Health::good), CallEnd::no_answer);
    case Kind::call_busy:
      return call(t, pick_phone(Health::good), CallEnd::busy);
    case Kind::register_wrong_password:
      return register_wrong_password(t, pick_phone(Health::wrong_password));
    case Kind::invite_wrong_password:
      return invite_wrong_password(t, pick_phone(Health::wrong_password));
    case Kind::register_no_credentials:
      return register_no_credentials(t, pick_phone(Health::no_credentials));
    case Kind::qualify_offline:
      return options_to_phone(t, pick_phone(Health::offline), false);
    case Kind::register_backup_down:
      return register_unanswered(t, pick_phone(Health::good));
    case Kind::crlf_keepalive:
      return keepalive(t, pick_phone(Health::good));
  }
}

// ---------------------------------------------------------------- scheduling and writing

void Generator::schedule(Micros at, std::variant<SipSend, RawPacket, RtpStream> what,
                         std::uint64_t bytes) {
  events_.push(Event{at, order_++, std::move(what)});
  pending_bytes_ += bytes;
}

void Generator::send(Micros at, const IpEndpoint& src, const IpEndpoint& dst, int conn,
                     std::string bytes) {
  // Estimated on-file size: payload, IP and transport headers, record header.
  std::uint64_t size = bytes.size() + (src.v6 ? 40 : 20) + (conn >= 0 ? 20 : 8) + kRecordOverhead;
  scheduled_sip_ += size;
  schedule(at, SipSend{src, dst, conn, std::move(bytes)}, size);
}

void Generator::write(Micros at, const std::string& packet, bool noise) {
  if (packet.empty()) return;
  // Send times of different scenarios interleave; the file keeps the clock monotonic.
  at = std::max(at, last_written_);
  last_written_ = at;
  if (!first_written_) first_written_ = at;
  writer_.write(sw::capture::TimePoint{std::chrono::microseconds(at)}, packet);
  ++totals_.records;
  totals_.bytes += packet.size() + kRecordOverhead;
  (noise ? totals_.noise_bytes : totals_.sip_bytes) += packet.size() + kRecordOverhead;
}

void Generator::emit_udp(Micros at, const SipSend& s) {
  auto packet = sw::capture::build_udp_packet(s.src, s.dst, s.bytes, ip_id_++);
  if (s.bytes.find_first_not_of("\r\n") == std::string::npos) {
    write(at, packet, true);  // CRLF keep-alive
    return;
  }
  ++totals_.sip_messages;
  ++totals_.sip_udp;
  if (packet.size() <= kMtu || s.src.v6) {
    write(at, packet, false);
    return;
  }
  auto fragments = sw::capture::fragment_ipv4(packet, kMtu);
  ++totals_.fragmented;
  totals_.fragments += fragments.size();
  if (rng_.chance(0.2))
    std::reverse(fragments.begin(), fragments.end());  // some stacks send the last first
  for (std::size_t i = 0; i < fragments.size(); ++i)
    write(at + static_cast<Micros>(i) * 12, fragments[i], false);
}

void Generator::emit_tcp(Micros at, const SipSend& s) {
  auto& c = conns_[static_cast<std::size_t>(s.conn)];
  bool from_client = s.src.to_string() == c.client.to_string();
  int d = from_client ? 0 : 1;
  const auto& src = from_client ? c.client : c.server;
  const auto& dst = from_client ? c.server : c.client;
  if (!c.opened) {
    c.opened = true;
    if (c.handshake) {  // a new connection: the phone opens it
      Micros hs = at - 3 * kMs;
      write(hs, sw::capture::build_tcp_packet(c.client, c.server, c.seq[0]++, 0, tcp_flag::syn, {}),
            false);
      write(hs + kMs,
            sw::capture::build_tcp_packet(c.server, c.client, c.seq[1]++, c.seq[0],
                                          tcp_flag::syn | tcp_flag::ack, {}),
            false);
      write(
          hs + 2 * kMs,
          sw::capture::build_tcp_packet(c.client, c.server, c.seq[0], c.seq[1], tcp_flag::ack, {}),
          false);
    }
  }
  ++totals_.sip_messages;
  ++totals_.sip_tcp;
  // Cut points: the MSS, and for a good share of messages a cut mid-message
  // (a small congestion window, Nagle, a TLS-less SBC flushing early).
  std::vector<std::size_t> cuts;
  for (std::size_t off = kMss; off < s.bytes.size(); off += kMss) cuts.push_back(off);
  if (s.bytes.size() > 40 && rng_.chance(0.35)) {
    auto pieces = rng_.range(1, 2);
    for (std::int64_t i = 0; i < pieces; ++i)
      cuts.push_back(
          static_cast<std::size_t>(rng_.range(1, static_cast<std::int64_t>(s.bytes.size()) - 1)));
    ++totals_.tcp_split;
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  cuts.push_back(s.bytes.size());
  std::vector<std::string> segments;
  std::size_t from = 0;
  for (auto cut : cuts) {
    std::string_view piece = std::string_view(s.bytes).substr(from, cut - from);
    segments.push_back(sw::capture::build_tcp_packet(src, dst, c.seq[d], c.seq[1 - d],
                                                     tcp_flag::psh | tcp_flag::ack, piece));
    c.seq[d] += static_cast<std::uint32_t>(piece.size());
    from = cut;
  }
  totals_.tcp_segments += segments.size();
  // Now and then the last two segments arrive swapped; never on a stream the
  // capture joined midway before its first bytes were seen.
  if (segments.size() >= 2 && c.sent_data[d] && rng_.chance(0.05)) {
    std::swap(segments[segments.size() - 1], segments[segments.size() - 2]);
    ++totals_.tcp_reordered;
  }
  c.sent_data[d] = true;
  for (std::size_t i = 0; i < segments.size(); ++i)
    write(at + static_cast<Micros>(i) * 15, segments[i], false);
  // The odd retransmission of a segment already delivered.
  if (rng_.chance(0.004)) {
    ++totals_.tcp_retransmitted;
    schedule(at + 210 * kMs, RawPacket{segments.front()},
             segments.front().size() + kRecordOverhead);
  }
  // The peer's bare ACK (delayed ACKs skip some).
  if (rng_.chance(0.5))
    write(at + 200,
          sw::capture::build_tcp_packet(dst, src, c.seq[1 - d], c.seq[d], tcp_flag::ack, {}),
          false);
}

void Generator::emit(const Event& e) {
  if (const auto* s = std::get_if<SipSend>(&e.what)) {
    pending_bytes_ -=
        std::min<std::uint64_t>(pending_bytes_, s->bytes.size() + (s->src.v6 ? 40 : 20) +
                                                    (s->conn >= 0 ? 20 : 8) + kRecordOverhead);
    if (s->conn >= 0)
      emit_tcp(e.at, *s);
    else
      emit_udp(e.at, *s);
  } else if (const auto* raw = std::get_if<RawPacket>(&e.what)) {
    pending_bytes_ -= std::min<std::uint64_t>(pending_bytes_, raw->packet.size() + kRecordOverhead);
    write(e.at, raw->packet, false);
  } else {
    auto rtp = std::get<RtpStream>(e.what);
    std::string payload(12 + kRtpPayload, '\0');
    payload[0] = static_cast<char>(0x80);
    payload[1] = static_cast<char>(rtp.payload_type);
    payload[2] = static_cast<char>(rtp.seq >> 8);
    payload[3] = static_cast<char>(rtp.seq & 0xff);
    for (int i = 0; i < 4; ++i) {
      payload[4 + i] = static_cast<char>(rtp.timestamp >> (24 - 8 * i));
      payload[8 + i] = static_cast<char>(rtp.ssrc >> (24 - 8 * i));
    }
    // Companded audio: mostly near-silence with some noise, cheap to make.
    auto bits = rng_.next();
    for (std::size_t i = 12; i < payload.size(); ++i) {
      if (i % 16 == 0) bits = rng_.next();
      payload[i] =
          static_cast<char>((rtp.payload_type ? 0xd5 : 0xff) ^ static_cast<int>(bits & 0x7));
      bits >>= 4;
    }
    write(e.at, sw::capture::build_udp_packet(rtp.src, rtp.dst, payload, ip_id_++), true);
    ++totals_.rtp_packets;
    std::uint64_t size = payload.size() + (rtp.src.v6 ? 48 : 28) + kRecordOverhead;
    pending_bytes_ -= std::min(pending_bytes_, size);
    if (--rtp.remaining) {
      ++rtp.seq;
      rtp.timestamp += kRtpPayload;
      events_.push(Event{e.at + 20 * kMs + rng_.range(-500, 500), order_++, rtp});
    }
  }
}

void Generator::run(std::uint64_t target_bytes, double rate, double rtp_share) {
  rtp_share_ = rtp_share;
  Micros t = kStart;
  double mean_gap = static_cast<double>(kSec) / rate;
  while (totals_.bytes + pending_bytes_ < target_bytes) {
    // Arrivals follow a Poisson process.
    t += std::max<Micros>(1, static_cast<Micros>(rng_.exponential(mean_gap)));
    while (!events_.empty() && events_.top().at <= t) {
      Event e = events_.top();
      events_.pop();
      emit(e);
    }
    scenario(t);
  }
  while (!events_.empty()) {
    Event e = events_.top();
    events_.pop();
    emit(e);
  }
}

void Generator::report(std::ostream& out, const std::string& path) const {
  const auto& s = totals_;
  double span = static_cast<double>(last_written_ - first_written_) / static_cast<double>(kSec);
  out << "make_capture: wrote " << path << ": " << s.bytes << " bytes, " << s.records
      << " packets over " << static_cast<long long>(span) << " s of capture time, "
      << phones_.size() << " phones\n";
  out << "  SIP messages: " << s.sip_messages << " (" << s.sip_udp << " UDP, " << s.sip_tcp
      << " TCP), " << s.sip_bytes * 100 / std::max<std::uint64_t>(s.bytes, 1) << "% of the file\n";
  out << "  UDP: " << s.fragmented << " datagrams in " << s.fragments
      << " IP fragments; TCP: " << s.tcp_segments << " data segments, " << s.tcp_split
      << " messages cut mid-message, " << s.tcp_reordered << " reordered, " << s.tcp_retransmitted
      << " retransmitted\n";
  out << "  noise: " << s.rtp_packets << " RTP packets, " << s.keepalives << " CRLF keep-alives ("
      << s.noise_bytes * 100 / std::max<std::uint64_t>(s.bytes, 1) << "% of the file)\n";
  out << "  scenarios:";
  bool first = true;
  for (const auto& [name, n] : scenarios_) {
    out << (first ? " " : ", ") << n << " " << name;
    first = false;
  }
  out << "\n";
  std::uint64_t flows = 0;
  for (const auto& [name, n] : verdicts_) flows += n;
  // The same form as analyze's closing line, so a script can compare them.
  out << "expected: " << flows << " flows:";
  first = true;
  for (const auto& [name, n] : verdicts_) {
    out << (first ? " " : ", ") << n << " " << name;
    first = false;
  }
  out << "\n";
}

struct Options {
  double size_mb = 100;
  std::string out;
  std::uint64_t seed = 1;
  std::size_t phones = 3000;
  double rate = 40;
  double rtp_share = 0.2;
  double tcp_share = 0.15;
  std::string users_out;
};

int usage(const char* why) {
  if (why) std::cerr << "make_capture: " << why << "\n";
  std::cerr << "usage: make_capture --size-mb N --out FILE [--seed N] [--phones N]\n"
               "                    [--rate SCENARIOS_PER_S] [--rtp-share 0..0.9]\n"
               "                    [--tcp-share 0..1] [--users-out FILE]\n";
  return 2;
}

std::optional<double> number(const char* text) {
  char* end = nullptr;
  double v = std::strtod(text, &end);
  if (end == text || *end != '\0' || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(nullptr);
      return 0;
    }
    if (i + 1 >= argc) return usage(("missing value for " + std::string(arg)).c_str());
    const char* value = argv[++i];
    auto n = number(value);
    if (arg == "--out")
      opt.out = value;
    else if (arg == "--users-out")
      opt.users_out = value;
    else if (!n)
      return usage(("not a number: " + std::string(value)).c_str());
    else if (arg == "--size-mb")
      opt.size_mb = *n;
    else if (arg == "--seed")
      opt.seed = static_cast<std::uint64_t>(*n);
    else if (arg == "--phones")
      opt.phones = static_cast<std::size_t>(*n);
    else if (arg == "--rate")
      opt.rate = *n;
    else if (arg == "--rtp-share")
      opt.rtp_share = *n;
    else if (arg == "--tcp-share")
      opt.tcp_share = *n;
    else
      return usage(("unknown option " + std::string(arg)).c_str());
  }
  if (opt.out.empty()) return usage("--out is required");
  if (opt.size_mb <= 0 || opt.phones < 2 || opt.rate <= 0 || opt.rtp_share >= 0.95 ||
      opt.tcp_share > 1)
    return usage("out of range");

  Generator gen(opt.seed, opt.out);
  if (!gen.ok()) {
    std::cerr << "make_capture: " << gen.error() << "\n";
    return 1;
  }
  gen.make_phones(opt.phones, opt.tcp_share);
  gen.run(static_cast<std::uint64_t>(opt.size_mb * 1e6), opt.rate, opt.rtp_share);
  if (!gen.flush()) {
    std::cerr << "make_capture: " << gen.error() << "\n";
    return 1;
  }
  if (!opt.users_out.empty() && !gen.write_users(opt.users_out)) {
    std::cerr << "make_capture: cannot write " << opt.users_out << "\n";
    return 1;
  }
  gen.report(std::cout, opt.out);
  return 0;
}
