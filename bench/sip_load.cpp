// SIP OPTIONS load generator and answering UAS for bench/compare: measures a
// proxy's maximum rate and its latency with microsecond resolution. SIPp is
// single-threaded and tops out around 45k OPTIONS/s here, and its response
// times are whole milliseconds; this tool does one cheap thing per message
// (batched sendmmsg/recvmmsg, no per-transaction allocation) so it can out-run
// the proxy under test.
//
//   sip_load uas --bind 127.0.0.1:PORT [--duration SECONDS]
//   sip_load relay --bind 127.0.0.1:PORT --upstream 127.0.0.1:PORT [--duration SECONDS]
//   sip_load uac --target 127.0.0.1:PORT --rate R --count N [--bind 127.0.0.1:PORT]
//                [--sockets K] [--timeout-ms 2000] [--json]
//
// Addresses must be loopback (127.0.0.0/8 or [::1]): a load generator must
// never flood a real network by a typo.
//
// uac --sockets K (default 1): K UDP sockets on the --bind address (only the
// first gets --bind's port, the others one of the kernel's choice); request n
// leaves from socket n % K, with that socket's port in its Via and Contact, and
// responses are read from all K. A proxy that spreads its load over several
// SO_REUSEPORT sockets by the sender's address and port (sipwitness's
// `workers:`) sees K senders instead of one.
//
// relay: the floor under a proxy's CPU per transaction for bench/compare. It
// forwards datagrams from --upstream to the last other sender and everything
// else to --upstream, byte for byte, with the batched reads and sends of a
// proxy and no SIP work at all.
//
// uac output: sent, answered (2xx), failed (sent but no 2xx: lost, timed out or
// a non-2xx final), duplicates (extra finals for a finished transaction),
// offered_rate, achieved_send_rate (sent / first-to-last send; 0 below two
// sends), elapsed_s (first send to the last final response or last send,
// whichever is later) and response times in microseconds (nearest rank; null
// when nothing was answered), from a steady_clock read just before sendmmsg to
// one just after recvmmsg.
//
// uac exit status: 0 all N sent and answered with a 2xx, 1 some failed (or
// SIGINT/SIGTERM cut the run short), 2 it could not run (bad usage, socket setup).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
using Nanos = std::int64_t;

constexpr unsigned kBatch = 64;               // datagrams per sendmmsg/recvmmsg
constexpr std::size_t kRecvSlot = 16 * 1024;  // SIP over UDP stays well under this
constexpr int kSockBuf = 4 * 1024 * 1024;
constexpr std::string_view kBranchPrefix = "branch=z9hG4bK-sl-";
constexpr unsigned kMaxSockets = 256;  // uac --sockets

Nanos now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

volatile std::sig_atomic_t g_stop = 0;
extern "C" void on_signal(int) {
  g_stop = 1;
}

// SIGINT/SIGTERM stay blocked except inside ppoll, so a signal can never slip in
// between checking g_stop and going to sleep.
sigset_t install_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigprocmask(SIG_BLOCK, &block, &old);
  sigdelset(&old, SIGINT);
  sigdelset(&old, SIGTERM);
  return old;
}

timespec to_timespec(Nanos ns) {
  ns = std::max<Nanos>(ns, 0);
  return timespec{static_cast<time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
}

// ------------------------------------------------------------------ usage
[[noreturn]] void usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "sip_load: %s\n", why.c_str());
  std::fprintf(stderr,
               "usage: sip_load uas --bind 127.0.0.1:PORT [--duration SECONDS]\n"
               "       sip_load relay --bind 127.0.0.1:PORT --upstream 127.0.0.1:PORT\n"
               "                      [--duration SECONDS]\n"
               "       sip_load uac --target 127.0.0.1:PORT --rate R --count N\n"
               "                    [--bind 127.0.0.1:PORT] [--sockets K] [--timeout-ms 2000]\n"
               "                    [--json]\n"
               "  --sockets K: uac sends from K UDP sockets, request n from socket n %% K\n"
               "               (default 1, at most %u)\n"
               "addresses: 127.x.x.x:PORT or [::1]:PORT (loopback only)\n",
               kMaxSockets);
  std::exit(2);
}

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "sip_load: %s: %s\n", what, std::strerror(errno));
  std::exit(2);
}

template <typename T>
std::optional<T> parse_num(std::string_view s) {
  T v{};
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
  return v;
}

struct Endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string host;  // as written in Via/Contact: "127.0.0.1" or "[::1]"
};

// "127.0.0.1:5060" or "[::1]:5060"; anything that is not loopback is refused.
std::optional<Endpoint> parse_endpoint(std::string_view s, bool allow_port0) {
  Endpoint ep;
  std::string_view host, port;
  if (!s.empty() && s.front() == '[') {
    auto close = s.find("]:");
    if (close == std::string_view::npos) return std::nullopt;
    host = s.substr(1, close - 1);
    port = s.substr(close + 2);
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = s.substr(0, colon);
    port = s.substr(colon + 1);
  }
  auto p = parse_num<unsigned>(port);
  if (!p || *p > 65535 || (*p == 0 && !allow_port0)) return std::nullopt;
  std::string h(host);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
  if (inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
    if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) return std::nullopt;
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(*p));
    ep.len = sizeof(sockaddr_in);
    ep.host = h;
  } else if (inet_pton(AF_INET6, h.c_str(), &v6->sin6_addr) == 1) {
    if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return std::nullopt;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(*p));
    ep.len = sizeof(sockaddr_in6);
    ep.host = "[" + h + "]";
  } else {
    return std::nullopt;
  }
  return ep;
}

void set_port(sockaddr_storage& a, std::uint16_t port) {
  if (a.ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6&>(a).sin6_port = htons(port);
  else
    reinterpret_cast<sockaddr_in&>(a).sin_port = htons(port);
}

std::uint16_t port_of(const sockaddr_storage& a) {
  return ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6&>(a).sin6_port
                                       : reinterpret_cast<const sockaddr_in&>(a).sin_port);
}

// Non-blocking UDP socket with big buffers: at tens of thousands of datagrams a
// second the default ~200 KiB overflows within a few milliseconds of a stall.
int open_socket(Endpoint& bind_ep) {
  int fd = socket(bind_ep.addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  const int opts[2][2] = {{SO_RCVBUFFORCE, SO_RCVBUF}, {SO_SNDBUFFORCE, SO_SNDBUF}};
  for (const auto& o : opts) {
    // The FORCE variants pass net.core.*mem_max when privileged; else best effort.
    if (setsockopt(fd, SOL_SOCKET, o[0], &kSockBuf, sizeof kSockBuf) != 0)
      setsockopt(fd, SOL_SOCKET, o[1], &kSockBuf, sizeof kSockBuf);
  }
  if (bind(fd, reinterpret_cast<sockaddr*>(&bind_ep.addr), bind_ep.len) != 0) die("bind");
  socklen_t len = sizeof bind_ep.addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bind_ep.addr), &len);
  return fd;
}

// Every socket gets the same buffers: the caller asks about one of them.
void warn_if_small_buffer(int fd) {
  int got = 0;
  socklen_t gl = sizeof got;
  // Linux reports twice the requested size (bookkeeping overhead included).
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &gl) == 0 && got < kSockBuf)
    std::fprintf(stderr, "sip_load: warning: SO_RCVBUF is only %d bytes\n", got);
}

// One recvmmsg of up to kBatch datagrams into fixed slots, with their senders.
struct RecvBatch {
  std::vector<char> data = std::vector<char>(kBatch * kRecvSlot);
  std::vector<sockaddr_storage> peers = std::vector<sockaddr_storage>(kBatch);
  std::vector<iovec> iov = std::vector<iovec>(kBatch);
  std::vector<mmsghdr> msg = std::vector<mmsghdr>(kBatch);

  // recvmmsg's result: datagrams read, or <= 0 when none was queued.
  int receive(int fd) {
    for (unsigned i = 0; i < kBatch; ++i) {
      iov[i] = {data.data() + i * kRecvSlot, kRecvSlot};
      msg[i] = {};
      msg[i].msg_hdr.msg_iov = &iov[i];
      msg[i].msg_hdr.msg_iovlen = 1;
      msg[i].msg_hdr.msg_name = &peers[i];
      msg[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
    }
    return recvmmsg(fd, msg.data(), kBatch, 0, nullptr);
  }
  std::string_view datagram(unsigned i) const { return {data.data() + i * kRecvSlot, msg[i].msg_len}; }
};

// Sends n datagrams, waiting briefly for room when the send buffer is full
// rather than dropping them; returns how many were sent.
unsigned send_all(int fd, mmsghdr* msgs, unsigned n) {
  unsigned done = 0;
  while (done < n) {
    int s = sendmmsg(fd, msgs + done, n - done, 0);
    if (s > 0) {
      done += static_cast<unsigned>(s);
      continue;
    }
    if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR) break;
    pollfd w{fd, POLLOUT, 0};
    if (poll(&w, 1, 10) <= 0) break;
  }
  return done;
}

// Sleeps in ppoll until fd is readable (true), the deadline passes or a signal
// comes (false: the caller checks g_stop and the clock again).
bool wait_readable(int fd, Nanos deadline, const sigset_t& wait_mask) {
  Nanos left = deadline - now_ns();
  if (left <= 0) return false;
  pollfd pfd{fd, POLLIN, 0};
  timespec ts = to_timespec(left);
  return ppoll(&pfd, 1, &ts, &wait_mask) > 0;
}

// ------------------------------------------------------------------ parsing
bool ieq(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if ((x | 0x20) != (y | 0x20)) return false;  // letters only compared here
  }
  return true;
}

// Walks header lines (CRLF or bare LF) up to the blank line. Each call yields a
// logical header: the line plus any folded continuation lines.
struct HeaderCursor {
  std::string_view msg;
  std::size_t pos;
  explicit HeaderCursor(std::string_view m) : msg(m) {
    auto nl = msg.find('\n');
    pos = nl == std::string_view::npos ? msg.size() : nl + 1;  // skip start line
  }
  // name: header name without trailing blanks; whole: the header's text without
  // its final line break; returns false at the end of the headers.
  bool next(std::string_view& name, std::string_view& whole) {
    if (pos >= msg.size() || msg[pos] == '\r' || msg[pos] == '\n') return false;
    std::size_t start = pos, end = pos;
    for (;;) {
      auto nl = msg.find('\n', end);
      if (nl == std::string_view::npos) {
        end = pos = msg.size();
        break;
      }
      end = nl;
      pos = nl + 1;
      if (pos >= msg.size() || (msg[pos] != ' ' && msg[pos] != '\t')) break;
      end = pos;  // folded line: keep going
    }
    if (end > start && msg[end - 1] == '\r') --end;
    whole = msg.substr(start, end - start);
    auto colon = whole.find(':');
    name = whole.substr(0, colon == std::string_view::npos ? 0 : colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.remove_suffix(1);
    return true;
  }
};

// ------------------------------------------------------------------ uas
struct UasResponder {
  std::string out;

  // Builds the 200 for one request into `out`; false if it must not be answered
  // (a response, an ACK, or a request missing a header a response needs).
  bool build(std::string_view req) {
    if (req.starts_with("SIP/2.0 ") || req.starts_with("ACK "))
      return false;  // ACK: never answered
    out.assign("SIP/2.0 200 OK\r\n");
    std::string_view from, to, call_id, cseq, name, whole;
    bool via = false;
    HeaderCursor hc(req);
    while (hc.next(name, whole)) {
      if (ieq(name, "Via") || ieq(name, "v")) {
        // Copied as written, so multi-value lines and the order stay intact.
        out.append(whole).append("\r\n");
        via = true;
      } else if (ieq(name, "From") || ieq(name, "f")) {
        from = whole;
      } else if (ieq(name, "To") || ieq(name, "t")) {
        to = whole;
      } else if (ieq(name, "Call-ID") || ieq(name, "i")) {
        call_id = whole;
      } else if (ieq(name, "CSeq")) {
        cseq = whole;
      }
    }
    if (!via || from.empty() || to.empty() || call_id.empty() || cseq.empty()) return false;
    out.append(from).append("\r\n").append(to);
    if (!has_tag(to)) out.append(";tag=uas1");
    out.append("\r\n").append(call_id).append("\r\n").append(cseq).append("\r\n");
    out.append("Content-Length: 0\r\n\r\n");
    return true;
  }

  // A tag is a header parameter, i.e. after the closing '>' of a name-addr
  // (a ";tag=" inside <...> would be a URI parameter).
  static bool has_tag(std::string_view to) {
    auto gt = to.rfind('>');
    if (gt != std::string_view::npos) to.remove_prefix(gt);
    for (std::size_t i = to.find(';'); i != std::string_view::npos; i = to.find(';', i + 1)) {
      auto rest = to.substr(i + 1);
      while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
      if (rest.size() >= 4 && ieq(rest.substr(0, 4), "tag=")) return true;
    }
    return false;
  }
};

// uas and relay: --bind, --duration and (relay) --upstream.
struct ServeArgs {
  std::optional<Endpoint> bind, upstream;
  double duration = 3600;
};

ServeArgs parse_serve_args(int argc, char** argv, std::string_view mode) {
  ServeArgs out;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (i + 1 >= argc) usage("missing value for " + std::string(a));
    std::string_view v = argv[++i];
    if (a == "--bind" || (a == "--upstream" && mode == "relay")) {
      auto& ep = a == "--bind" ? out.bind : out.upstream;
      ep = parse_endpoint(v, false);
      if (!ep) usage(std::string(a) + " wants a loopback 127.x.x.x:PORT or [::1]:PORT");
    } else if (a == "--duration") {
      auto d = parse_num<double>(v);
      if (!d || !(*d > 0)) usage("--duration wants seconds > 0");
      out.duration = *d;
    } else {
      usage("unknown option " + std::string(a));
    }
  }
  if (!out.bind) usage(std::string(mode) + " needs --bind");
  if (mode == "relay" && !out.upstream) usage("relay needs --upstream");
  if (out.upstream && out.upstream->addr.ss_family != out.bind->addr.ss_family)
    usage("--bind and --upstream must be the same address family");
  return out;
}

// uas and relay: the bound socket, the signal mask for ppoll and the end of the run.
struct Serving {
  ServeArgs args;
  sigset_t wait_mask;
  int fd;
  Nanos deadline;
};

Serving start_serving(int argc, char** argv, std::string_view mode) {
  Serving s{parse_serve_args(argc, argv, mode), install_signals(), -1, 0};
  s.fd = open_socket(*s.args.bind);
  warn_if_small_buffer(s.fd);
  s.deadline = now_ns() + static_cast<Nanos>(s.args.duration * 1e9);
  return s;
}

int run_uas(int argc, char** argv) {
  const auto [args, wait_mask, fd, deadline] = start_serving(argc, argv, "uas");

  RecvBatch in;
  std::vector<UasResponder> resp(kBatch);
  std::vector<iovec> out_iov(kBatch);
  std::vector<mmsghdr> out_msg(kBatch);
  std::uint64_t answered = 0, ignored = 0;

  while (!g_stop && now_ns() < deadline) {
    if (!wait_readable(fd, deadline, wait_mask)) continue;
    for (;;) {  // drain everything queued before sleeping again
      int n = in.receive(fd);
      if (n <= 0) break;  // EAGAIN: drained (other errors: nothing to answer)
      unsigned out_n = 0;
      for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
        const auto& h = in.msg[i].msg_hdr;
        if ((h.msg_flags & MSG_TRUNC) || !resp[i].build(in.datagram(i))) {
          ++ignored;
          continue;
        }
        out_iov[out_n] = {resp[i].out.data(), resp[i].out.size()};
        out_msg[out_n] = {};
        out_msg[out_n].msg_hdr.msg_iov = &out_iov[out_n];
        out_msg[out_n].msg_hdr.msg_iovlen = 1;
        // Answer the packet's source, as SIPp does: that is the proxy's socket.
        out_msg[out_n].msg_hdr.msg_name = &in.peers[i];
        out_msg[out_n].msg_hdr.msg_namelen = h.msg_namelen;
        ++out_n;
      }
      answered += send_all(fd, out_msg.data(), out_n);
      if (static_cast<unsigned>(n) < kBatch) break;  // queue empty: save an EAGAIN call
    }
  }
  close(fd);
  if (ignored)
    std::fprintf(stderr, "sip_load: uas ignored %llu datagrams\n",
                 static_cast<unsigned long long>(ignored));
  std::printf("uas answered=%llu\n", static_cast<unsigned long long>(answered));
  return 0;
}

// ------------------------------------------------------------------ uac
// Response classification for one datagram: the status code and the number n
// from our branch in the top Via, or n = -1 when it is not one of ours.
struct Parsed {
  int status = 0;
  std::int64_t n = -1;
};

Parsed parse_response(std::string_view m) {
  Parsed r;
  if (m.size() < 12 || !m.starts_with("SIP/2.0 ")) return r;
  auto code = parse_num<int>(m.substr(8, 3));
  if (!code) return r;
  r.status = *code;
  HeaderCursor hc(m);
  std::string_view name, whole;
  while (hc.next(name, whole)) {
    if (!(ieq(name, "Via") || ieq(name, "v"))) continue;
    // Only the first value of the first Via: a proxy that forgot to pop its own
    // Via must not get credit for ours further down.
    auto top = whole.substr(0, whole.find(','));
    auto b = top.find(kBranchPrefix);
    if (b == std::string_view::npos) return r;
    auto digits = top.substr(b + kBranchPrefix.size());
    std::size_t len = 0;
    while (len < digits.size() && digits[len] >= '0' && digits[len] <= '9') ++len;
    if (auto n = parse_num<std::int64_t>(digits.substr(0, len))) r.n = *n;
    return r;
  }
  return r;
}

enum : std::uint8_t { kUnsent, kPending, kAnswered, kRejected };

struct UacResult {
  std::uint64_t sent = 0, answered = 0, rejected = 0, duplicates = 0, strays = 0;
  int first_reject_status = 0;
  Nanos first_send = 0, last_send = 0, last_final = 0;
  std::vector<Nanos> latencies;
};

class Uac {
 public:
  // fds[s] is bound to locals[s]; request n leaves from fds[n % fds.size()].
  Uac(const std::vector<int>& fds, const Endpoint& target, const std::vector<Endpoint>& locals,
      std::uint64_t count)
      : target_(target), state_(count, kUnsent), send_ns_(count, 0) {
    res_.latencies.reserve(count);
    std::random_device rd;
    char runid[16];
    std::snprintf(runid, sizeof runid, "%08x", rd());
    for (std::size_t s = 0; s < fds.size(); ++s) {
      pfds_.push_back(pollfd{fds[s], POLLIN, 0});
      // Via and Contact name the socket the request leaves from.
      const Endpoint& local = locals[s];
      std::string hostport = local.host + ":" + std::to_string(port_of(local.addr));
      auto& seg = segs_.emplace_back();
      seg[0] = "OPTIONS sip:2000@bench.test SIP/2.0\r\nVia: SIP/2.0/UDP " + hostport + ";" +
               std::string(kBranchPrefix);
      seg[1] = ";rport\r\nFrom: <sip:1001@bench.test>;tag=sl";
      seg[2] = std::string("\r\nTo: <sip:2000@bench.test>\r\nCall-ID: sl-") + runid + "-";
      seg[3] = "@" + local.host + "\r\nCSeq: 1 OPTIONS\r\nContact: <sip:1001@" + hostport +
               ">\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
    }
    out_.resize(kBatch * kOutSlot);
    in_.resize(kBatch * kRecvSlot);
  }

  // Sends k requests (1..kBatch): first those a full send buffer turned away
  // last time, then the next new ones. k is what fell due and not sent yet,
  // which includes those turned away, so they always fit. Returns how many the
  // kernel took; the others go first next time (blocked() says there are some).
  unsigned send_batch(unsigned k) {
    const unsigned nsock = static_cast<unsigned>(pfds_.size());
    struct Item {
      unsigned sock;
      std::uint64_t n;
    };
    Item items[kBatch];
    unsigned m = 0;
    for (; m < retry_n_; ++m) items[m] = {static_cast<unsigned>(retry_[m] % nsock), retry_[m]};
    retry_n_ = 0;
    for (; m < k; ++m, ++next_) items[m] = {static_cast<unsigned>(next_ % nsock), next_};
    // One sendmmsg per socket: group the batch by socket. With one socket the
    // items are in order already (turned-away ones are older than new ones).
    if (nsock > 1)
      std::sort(items, items + m, [](const Item& a, const Item& b) {
        return a.sock != b.sock ? a.sock < b.sock : a.n < b.n;
      });
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];
    for (unsigned i = 0; i < m; ++i) {
      char* slot = out_.data() + i * kOutSlot;
      iov[i] = {slot, build(slot, items[i].n, segs_[items[i].sock])};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = const_cast<sockaddr_storage*>(&target_.addr);
      msgs[i].msg_hdr.msg_namelen = target_.len;
    }
    blocked_ = -1;
    unsigned taken = 0;
    for (unsigned start = 0; start < m;) {
      const unsigned sock = items[start].sock;
      unsigned end = start + 1;
      while (end < m && items[end].sock == sock) ++end;
      // One timestamp per sendmmsg, taken just before the datagrams enter the
      // kernel; batches are a few messages, so later ones are stamped at most µs early.
      Nanos t = now_ns();
      int s = sendmmsg(pfds_[sock].fd, msgs + start, end - start, 0);
      if (s < 0) {
        if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR) die("sendmmsg");
        s = 0;
      }
      const unsigned sent_end = start + static_cast<unsigned>(s);
      for (unsigned i = start; i < sent_end; ++i) {
        state_[items[i].n] = kPending;
        send_ns_[items[i].n] = t;
      }
      if (s > 0) {
        if (res_.sent == 0) res_.first_send = t;
        res_.sent += static_cast<unsigned>(s);
        res_.last_send = t;
        taken += static_cast<unsigned>(s);
      }
      if (sent_end < end) {  // the send buffer is full: these go first next time
        if (blocked_ < 0) blocked_ = static_cast<int>(sock);
        for (unsigned i = sent_end; i < end; ++i) retry_[retry_n_++] = items[i].n;
      }
      start = end;
    }
    return taken;
  }

  // Reads and matches everything queued on every socket, without blocking.
  void drain_all() {
    if (pfds_.size() == 1) return drain(0);
    for (auto& p : pfds_) p.events = POLLIN;
    if (poll(pfds_.data(), pfds_.size(), 0) > 0) drain_ready();
  }

  // Sleeps until a response is queued, the send buffer of the blocked socket has
  // room (when want_out), ts passes or a signal comes; then reads what is queued.
  void wait(const timespec& ts, const sigset_t& mask, bool want_out) {
    for (auto& p : pfds_) p.events = POLLIN;
    if (want_out && blocked_ >= 0) pfds_[blocked_].events = static_cast<short>(POLLIN | POLLOUT);
    if (ppoll(pfds_.data(), pfds_.size(), &ts, &mask) > 0) drain_ready();
  }

  bool blocked() const { return retry_n_ > 0; }
  bool all_final() const { return res_.answered + res_.rejected == state_.size(); }
  UacResult& result() { return res_; }

 private:
  static constexpr std::size_t kOutSlot = 1024;

  void drain_ready() {
    for (std::size_t s = 0; s < pfds_.size(); ++s)
      if (pfds_[s].revents & POLLIN) drain(s);
  }

  void drain(std::size_t s) {
    for (;;) {
      mmsghdr msgs[kBatch];
      iovec iov[kBatch];
      for (unsigned i = 0; i < kBatch; ++i) {
        iov[i] = {in_.data() + i * kRecvSlot, kRecvSlot};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int n = recvmmsg(pfds_[s].fd, msgs, kBatch, 0, nullptr);
      if (n <= 0) return;
      // One receive time for the batch: the datagrams were all already queued.
      Nanos t = now_ns();
      for (unsigned i = 0; i < static_cast<unsigned>(n); ++i)
        on_datagram(std::string_view(in_.data() + i * kRecvSlot, msgs[i].msg_len), t);
      // A short batch means the queue is empty: skip the call that would only
      // say EAGAIN (syscalls are most of this tool's cost).
      if (static_cast<unsigned>(n) < kBatch) return;
    }
  }

  static std::size_t build(char* p, std::uint64_t n, const std::array<std::string, 4>& seg) {
    char num[24];
    auto nlen = static_cast<std::size_t>(std::to_chars(num, num + sizeof num, n).ptr - num);
    char* start = p;
    for (int s = 0; s < 4; ++s) {
      std::memcpy(p, seg[s].data(), seg[s].size());
      p += seg[s].size();
      if (s < 3) {
        std::memcpy(p, num, nlen);
        p += nlen;
      }
    }
    return static_cast<std::size_t>(p - start);
  }

  void on_datagram(std::string_view m, Nanos t) {
    Parsed p = parse_response(m);
    if (p.status < 200) return;  // provisional or not a response: no effect
    if (p.n < 0 || static_cast<std::uint64_t>(p.n) >= state_.size() || state_[p.n] == kUnsent) {
      ++res_.strays;  // not ours (another run on this port, a mangled branch)
      return;
    }
    auto& st = state_[p.n];
    if (st != kPending) {
      ++res_.duplicates;
      return;
    }
    res_.last_final = t;
    if (p.status < 300) {
      st = kAnswered;
      ++res_.answered;
      res_.latencies.push_back(t - send_ns_[p.n]);
    } else {
      st = kRejected;
      if (res_.rejected++ == 0) res_.first_reject_status = p.status;
    }
  }

  const Endpoint& target_;
  std::vector<pollfd> pfds_;  // one per socket, in socket order
  // Indexed by n: the generator must stay cheap next to the proxy it loads.
  std::vector<std::uint8_t> state_;
  std::vector<Nanos> send_ns_;
  // Per socket: the request around the three places n goes.
  std::vector<std::array<std::string, 4>> segs_;
  std::vector<char> out_, in_;
  std::uint64_t next_ = 0;            // the next request never handed to the kernel
  std::uint64_t retry_[kBatch] = {};  // requests a full send buffer turned away
  unsigned retry_n_ = 0;
  int blocked_ = -1;  // the first socket whose send buffer was full last time
  UacResult res_;
};

double percentile_us(const std::vector<Nanos>& sorted, double p) {
  // Nearest rank: the smallest value with at least p of the samples at or below.
  auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1000.0;
}

int run_uac(int argc, char** argv) {
  std::optional<Endpoint> target, bind_ep;
  double rate = 0;
  std::uint64_t count = 0;
  std::int64_t timeout_ms = 2000;
  unsigned sockets = 1;
  bool json = false;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= argc) usage("missing value for " + std::string(a));
    std::string_view v = argv[++i];
    if (a == "--target") {
      target = parse_endpoint(v, false);
      if (!target) usage("--target wants a loopback 127.x.x.x:PORT or [::1]:PORT");
    } else if (a == "--bind") {
      bind_ep = parse_endpoint(v, true);
      if (!bind_ep) usage("--bind wants a loopback 127.x.x.x:PORT or [::1]:PORT");
    } else if (a == "--rate") {
      auto r = parse_num<double>(v);
      if (!r || !(*r > 0) || !std::isfinite(*r)) usage("--rate wants a number > 0");
      rate = *r;
    } else if (a == "--count") {
      auto c = parse_num<std::uint64_t>(v);
      if (!c || *c == 0 || *c > 1'000'000'000) usage("--count wants 1..1000000000");
      count = *c;
    } else if (a == "--timeout-ms") {
      auto t = parse_num<std::int64_t>(v);
      if (!t || *t < 0) usage("--timeout-ms wants milliseconds >= 0");
      timeout_ms = *t;
    } else if (a == "--sockets") {
      auto k = parse_num<unsigned>(v);
      if (!k || *k == 0 || *k > kMaxSockets)
        usage("--sockets wants 1.." + std::to_string(kMaxSockets));
      sockets = *k;
    } else {
      usage("unknown option " + std::string(a));
    }
  }
  if (!target) usage("uac needs --target");
  if (rate <= 0) usage("uac needs --rate");
  if (count == 0) usage("uac needs --count");
  if (!bind_ep)
    bind_ep = parse_endpoint(target->addr.ss_family == AF_INET6 ? "[::1]:0" : "127.0.0.1:0", true);
  if (bind_ep->addr.ss_family != target->addr.ss_family)
    usage("--bind and --target must be the same address family");

  sigset_t wait_mask = install_signals();
  // Socket 0 on --bind as given, the others on its address with a port of the
  // kernel's choice.
  std::vector<Endpoint> locals(sockets, *bind_ep);
  std::vector<int> fds;
  for (unsigned s = 0; s < sockets; ++s) {
    if (s > 0) set_port(locals[s].addr, 0);
    fds.push_back(open_socket(locals[s]));
  }
  warn_if_small_buffer(fds.front());
  Uac uac(fds, *target, locals, count);
  UacResult& res = uac.result();
  const Nanos timeout_ns = timeout_ms * 1'000'000;
  const Nanos t0 = now_ns();

  while (!g_stop) {
    Nanos now = now_ns();
    // Request k (from 0) is due at t0 + k/rate, so the schedule never drifts and
    // a late wake-up sends only the few requests that fell due meanwhile.
    std::uint64_t due = std::min<std::uint64_t>(
        count, static_cast<std::uint64_t>(static_cast<double>(now - t0) * rate / 1e9) + 1);
    while (res.sent < due) {
      unsigned k = static_cast<unsigned>(std::min<std::uint64_t>(due - res.sent, kBatch));
      uac.send_batch(k);
      if (uac.blocked()) break;
      // Catching up over several batches: keep the receive buffers from overflowing.
      if (res.sent < due) uac.drain_all();
    }
    if (res.sent == count && uac.all_final()) break;
    now = now_ns();
    const bool blocked = uac.blocked();  // a send buffer was full: wait for POLLOUT
    Nanos wait;
    if (blocked) {
      wait = 1'000'000;  // until the send buffer drains (POLLOUT), not a busy loop
    } else if (res.sent < count) {
      wait = t0 + static_cast<Nanos>(static_cast<double>(res.sent) * 1e9 / rate) - now;
    } else {
      wait = res.last_send + timeout_ns - now;
      if (wait <= 0) break;
    }
    // Reads the responses queued by the time it wakes up.
    uac.wait(to_timespec(wait), wait_mask, blocked);
  }
  uac.drain_all();  // anything that arrived with the last wake-up still counts
  for (int fd : fds) close(fd);

  auto& lat = res.latencies;
  std::sort(lat.begin(), lat.end());
  const std::uint64_t failed = res.sent - res.answered;
  const Nanos end = std::max(res.last_final, res.last_send);
  const double elapsed = res.sent ? static_cast<double>(end - res.first_send) / 1e9 : 0.0;
  const Nanos span = res.last_send - res.first_send;
  const double send_rate =
      span > 0 ? static_cast<double>(res.sent) / (static_cast<double>(span) / 1e9) : 0.0;

  if (res.rejected)
    std::fprintf(stderr, "sip_load: %llu non-2xx final responses (first: %d)\n",
                 static_cast<unsigned long long>(res.rejected), res.first_reject_status);
  if (res.strays)
    std::fprintf(stderr, "sip_load: %llu final responses matched no request\n",
                 static_cast<unsigned long long>(res.strays));
  if (g_stop) std::fprintf(stderr, "sip_load: interrupted\n");

  auto pct = [&](double p) -> std::string {
    if (lat.empty()) return "null";  // no answers: no latency, not a zero one
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", percentile_us(lat, p));
    return b;
  };
  const auto ull = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  const std::string p50 = pct(0.50), p90 = pct(0.90), p99 = pct(0.99), p999 = pct(0.999),
                    pmax = pct(1.0);
  if (json) {
    std::printf(
        "{\"sent\":%llu,\"answered\":%llu,\"failed\":%llu,\"duplicates\":%llu,"
        "\"offered_rate\":%.10g,\"achieved_send_rate\":%.1f,\"elapsed_s\":%.6f,"
        "\"p50_us\":%s,\"p90_us\":%s,\"p99_us\":%s,\"p999_us\":%s,\"max_us\":%s}\n",
        ull(res.sent), ull(res.answered), ull(failed), ull(res.duplicates), rate, send_rate,
        elapsed, p50.c_str(), p90.c_str(), p99.c_str(), p999.c_str(), pmax.c_str());
  } else {
    std::printf(
        "sent: %llu\nanswered: %llu\nfailed: %llu\nduplicates: %llu\noffered_rate: %.10g\n"
        "achieved_send_rate: %.1f\nelapsed_s: %.6f\np50_us: %s\np90_us: %s\np99_us: %s\n"
        "p999_us: %s\nmax_us: %s\n",
        ull(res.sent), ull(res.answered), ull(failed), ull(res.duplicates), rate, send_rate,
        elapsed, p50.c_str(), p90.c_str(), p99.c_str(), p999.c_str(), pmax.c_str());
  }
  return failed == 0 && res.sent == count ? 0 : 1;  // an interrupted run is no pass
}


// ------------------------------------------------------------------ relay
// The floor under a proxy's CPU per transaction: datagrams from the upstream go
// to the client, all others to the upstream, byte for byte, read and sent in
// batches like a proxy's, with nothing parsed. The client is the last sender
// that is not the upstream (bench/compare's SIPp UAC sends from one socket).
int run_relay(int argc, char** argv) {
  const auto [args, wait_mask, fd, deadline] = start_serving(argc, argv, "relay");
  const auto& upstream = args.upstream->addr;
  const auto from_upstream = [&up = upstream](const sockaddr_storage& a) {
    return port_of(a) == port_of(up) &&
           (a.ss_family == AF_INET6
                ? std::memcmp(&reinterpret_cast<const sockaddr_in6&>(a).sin6_addr,
                              &reinterpret_cast<const sockaddr_in6&>(up).sin6_addr, sizeof(in6_addr)) == 0
                : reinterpret_cast<const sockaddr_in&>(a).sin_addr.s_addr ==
                      reinterpret_cast<const sockaddr_in&>(up).sin_addr.s_addr);
  };
  RecvBatch in;
  sockaddr_storage client{};
  std::uint64_t relayed = 0, dropped = 0;  // dropped: truncated, or a response before any client
  while (!g_stop && now_ns() < deadline) {
    if (!wait_readable(fd, deadline, wait_mask)) continue;
    for (;;) {
      int n = in.receive(fd);
      if (n <= 0) break;
      unsigned out_n = 0;
      for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
        auto& h = in.msg[i].msg_hdr;
        const sockaddr_storage* to = &upstream;
        if (from_upstream(in.peers[i])) {
          to = &client;
        } else {
          client = in.peers[i];
        }
        if (to->ss_family == 0 || (h.msg_flags & MSG_TRUNC)) {
          ++dropped;
          continue;
        }
        in.iov[i].iov_len = in.msg[i].msg_len;
        h.msg_name = const_cast<sockaddr_storage*>(to);
        h.msg_namelen = args.bind->len;
        if (out_n != i) in.msg[out_n] = in.msg[i];
        ++out_n;
      }
      relayed += send_all(fd, in.msg.data(), out_n);
      if (static_cast<unsigned>(n) < kBatch) break;
    }
  }
  close(fd);
  std::printf("relay relayed=%llu dropped=%llu\n", static_cast<unsigned long long>(relayed),
              static_cast<unsigned long long>(dropped));
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("");
  std::string_view mode = argv[1];
  if (mode == "-h" || mode == "--help") usage("");
  if (mode == "uas") return run_uas(argc, argv);
  if (mode == "uac") return run_uac(argc, argv);
  if (mode == "relay") return run_relay(argc, argv);
  usage("unknown mode " + std::string(mode) + " (want uas, uac or relay)");
}
