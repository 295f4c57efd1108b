#include "server.hpp"

#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <numeric>

#include "auth/mac.hpp"
#include "diag/verdict.hpp"
#include "proxy/forward.hpp"
#include "proxy/reply.hpp"
#include "proxy/sip/text.hpp"

namespace sw::proxy {
namespace {

constexpr std::size_t kMaxReplaysPending = 1024;  // messages waiting for DNS at once, all names together
constexpr std::size_t kMaxDnsEntries = 4096;
constexpr std::size_t kMaxSourceIps = 4096;      // peer IPs whose local source address is cached
constexpr std::size_t kMaxTlsTickets = 4096;     // peers whose TLS session we can resume
// Timer C (RFC 3261 16.6 step 11): an INVITE without a final answer is let go then.
constexpr auto kInviteMaxAge = std::chrono::seconds(180);
// Timer F (RFC 3261 17.1.2.2): the sender of any other request has given up by then.
constexpr auto kRequestMaxAge = std::chrono::seconds(32);
constexpr std::size_t kStreamChunk = 16384;      // bytes per stream read
// UDP is read with our own recvmmsg: libuv's reader asks again after every
// burst until the socket says EAGAIN, a syscall per wakeup that finds nothing.
// A read that fills fewer slots than it offered has emptied the queue.
constexpr std::size_t kDatagramBuffer = 64 * 1024;  // a slot: the largest datagram
constexpr std::size_t kRecvSlots = 16;
constexpr std::size_t kRecvPerWakeup = 32;  // then other sockets get their turn
// Datagrams sent with one sendmmsg at most (a longer burst goes in parts).
constexpr std::size_t kSendBatch = 32;
// Socket buffers asked for on UDP listeners (the kernel grants up to
// net.core.rmem_max / wmem_max): the default 208 KiB overflows in a burst of a
// few hundred INVITEs while the loop is busy, and a datagram dropped there is
// a retransmission 500 ms later.
constexpr int kUdpSocketBuffer = 4 * 1024 * 1024;

// Local addresses of one family, to recognise our own Route/Via values when a
// listener is bound to a wildcard address.
std::vector<Address> local_addresses(int family) {
  std::vector<Address> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (auto* i = list; i; i = i->ifa_next)
    if (i->ifa_addr && i->ifa_addr->sa_family == family) out.push_back(Address::from_sockaddr(i->ifa_addr));
  freeifaddrs(list);
  return out;
}

bool is_loopback(const Address& a) { return a.ip().starts_with("127.") || a.ip() == "::1"; }

sip::Framing framing_of(Transport t) { return t == Transport::udp ? sip::Framing::datagram : sip::Framing::stream; }

// A UDP socket that shares its port with the other workers' sockets: the
// kernel spreads senders over them by a hash of their address and port.
int bind_reuseport(const Address& addr, uv_os_sock_t* out) {
  int fd = ::socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0 || ::bind(fd, addr.sa(), addr.len()) != 0) {
    int error = errno;
    ::close(fd);
    return uv_translate_sys_error(error);
  }
  *out = fd;
  return 0;
}

// SO_REUSEPORT would let a second sipwitness join our port unnoticed: the
// first worker binds it alone once, as a single worker would, to see it is
// free (and to learn the port the kernel picks for port 0).
int claim_port(const Address& addr, Address* claimed) {
  int fd = ::socket(addr.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return uv_translate_sys_error(errno);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  int rc = ::bind(fd, addr.sa(), addr.len()) == 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len) == 0
               ? 0
               : uv_translate_sys_error(errno);
  ::close(fd);
  if (rc == 0) *claimed = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&bound));
  return rc;
}

// Our branch in what could be read of a message (an ICMP error returns only its start).
std::string top_via_branch(const sip::Salvage& m) {
  for (const auto& [id, value] : m.headers)
    if (id == sip::HeaderId::Via) {
      auto via = sip::parse_via(sip::trim(value.substr(0, value.find(','))));
      return via ? std::string(via->branch) : std::string();
    }
  return {};
}

}  // namespace

struct Server::Listener {
  Server* server = nullptr;
  std::size_t index = 0;
  config::Listen cfg;
  LocalEndpoint endpoint;  // advertised in Via / Record-Route / Path
  Address bound;
  bool own = false;  // a worker's own UDP port (config workers), not a configured listener
  uv_udp_t udp{};    // owns the socket; sends (libuv queues them on EAGAIN)
  uv_poll_t reader{};  // readable: our recvmmsg, on a dup of the socket (epoll keeps one watcher per fd)
  uv_os_sock_t reader_fd = -1;
  uv_tcp_t tcp{};
  struct Datagram {
    std::string bytes;
    Address to;
  };
  std::vector<Datagram> batch;  // sent at the end of the read burst
};

// One read's slots: each as large as a datagram can be. Left uninitialised,
// so only the pages the kernel writes into become resident (1 MiB otherwise).
struct Server::RecvSlots {
  RecvSlots() {
    for (std::size_t i = 0; i < kRecvSlots; ++i) {
      iov[i] = {bytes.get() + i * kDatagramBuffer, kDatagramBuffer};
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
  }
  // What the kernel changed in the last read is set back.
  void reset() {
    for (auto& m : msgs) m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
  }
  std::string_view datagram(std::size_t i) const { return {bytes.get() + i * kDatagramBuffer, msgs[i].msg_len}; }

  std::unique_ptr<char[]> bytes = std::make_unique_for_overwrite<char[]>(kRecvSlots * kDatagramBuffer);
  std::array<mmsghdr, kRecvSlots> msgs{};
  std::array<iovec, kRecvSlots> iov{};
  std::array<sockaddr_storage, kRecvSlots> from{};
};

struct Server::Connection {
  Server* server = nullptr;
  std::uint64_t id = 0;
  std::size_t listener = 0;
  Transport transport = Transport::tcp;
  std::unique_ptr<tls::Session> tls;  // TLS connections: plaintext in inbuf, ciphertext on the socket
  Address remote;
  Address local;  // our end (getsockname), for observers
  uv_tcp_t tcp{};
  uv_timer_t idle{};
  uv_connect_t connect_req{};
  bool connected = false;
  int open_handles = 0;  // freed when both handles' close callbacks ran
  bool closing = false;
  bool counted_for_source = false;  // an accepted connection in limits.max_connections_per_source
  std::string inbuf;
  std::vector<std::string> queued;                       // written once connected
  std::vector<std::pair<std::string, Flow>> on_failure;  // replies if the connect fails
};

namespace {
struct WriteReq {
  uv_write_t req{};
  std::string data;
};
struct UdpSendReq {
  uv_udp_send_t req{};
  std::string data;
};
}  // namespace

template <class Detail>
void Server::log_limit(Limit limit, const Detail& detail) {
  if (limit_report_.hit(limit, LimitClock::now()))
    log_->warn("{} [limit hit; more hits are counted and reported every 10s]", detail());
}

template <class Detail>
void Server::limit_hit(Limit limit, const Detail& detail) {
  counters_.hit(limit);
  log_limit(limit, detail);
}

Server::Server(uv_loop_t* loop, config::Config cfg, std::shared_ptr<spdlog::logger> log,
               std::vector<diag::Observer*> observers, std::shared_ptr<const auth::CredentialStore> users,
               std::string lab_key, WorkerPlace place)
    : loop_(loop),
      cfg_(std::move(cfg)),
      log_(std::move(log)),
      observers_(std::move(observers)),
      limits_{cfg_.limits.max_message_bytes, cfg_.limits.max_headers, cfg_.limits.max_line_bytes},
      secret_(auth::random_hex(16)),
      place_(std::move(place)),
      bindings_(cfg_.relay.max_bindings),
      lab_key_(cfg_.lab.role == config::LabRole::none ? std::string() : std::move(lab_key)),
      seal_prefix_(auth::random_hex(4)),
      recv_slots_(std::make_unique<RecvSlots>()),
      tls_buffer_(kStreamChunk),
      source_limits_({cfg_.limits.max_requests_per_source, cfg_.limits.max_connections_per_source}) {
  observers_want_self_ =
      std::any_of(observers_.begin(), observers_.end(), [](const diag::Observer* o) { return o->wants_self(); });
  upstream_.transport = cfg_.upstream.transport;
  upstream_.host = cfg_.upstream.host;
  upstream_.port = cfg_.upstream.port;
  upstream_.upstream = true;
  if (auto literal = Address::from_ip(upstream_.host, upstream_.port)) {
    upstream_dns_.candidates = {dns::Candidate{upstream_.transport, upstream_.host, *literal}};
    upstream_dns_.expires = Clock::time_point::max();
  }
  if (cfg_.challenge.enabled) {
    auth::ChallengerSettings settings;
    settings.realm = cfg_.challenge.realm;
    for (const auto& name : cfg_.challenge.algorithms) settings.algorithms.push_back(*auth::parse_algorithm(name));
    settings.methods = cfg_.challenge.methods;
    settings.nonce_ttl = cfg_.challenge.nonce_ttl;
    settings.max_failures = cfg_.challenge.max_failures;
    settings.max_user_failures = cfg_.challenge.max_user_failures;
    settings.failure_window = cfg_.challenge.failure_window;
    settings.block_time = cfg_.challenge.block_time;
    settings.max_block_time = cfg_.challenge.max_block_time;
    settings.backoff_reset = cfg_.challenge.backoff_reset;
    settings.trusted_for = cfg_.challenge.trusted_for;
    // A random secret makes nonces from before a restart unknown, which the
    // challenger answers as stale (the phone retries), never as a wrong password.
    auto secret = cfg_.challenge.secret.empty() ? auth::random_hex(32) : cfg_.challenge.secret;
    challenger_ = std::make_unique<auth::Challenger>(std::move(settings), std::move(secret), std::move(users));
  }
}

void Server::reload_users(std::shared_ptr<const auth::CredentialStore> users) {
  if (challenger_) challenger_->set_store(std::move(users));
}

bool Server::load_tls(bool reloading) {
  std::string error;
  auto loaded = tls::load_contexts(cfg_, &error);
  if (!loaded) {
    log_->error("{}{}", reloading ? "SIGHUP: kept the running TLS certificates: " : "", error);
    return false;
  }
  const char* prefix = reloading ? "SIGHUP: reloaded " : "";
  for (std::size_t i = 0; i < loaded->listen.size(); ++i)
    if (loaded->listen[i]) log_->info("{}tls listen[{}]: {}", prefix, i, loaded->listen[i]->summary());
  if (loaded->client)
    log_->info("{}tls client: {}, {}", prefix, loaded->client->summary(),
               cfg_.upstream.tls.verify ? "verifying peers against " +
                                              (cfg_.upstream.tls.ca_file.empty() ? std::string("the system CA store")
                                                                                 : cfg_.upstream.tls.ca_file)
                                        : std::string("NOT verifying peers (upstream.tls.verify: false)"));
  listen_tls_ = std::move(loaded->listen);
  tls_client_ = std::move(loaded->client);
  tls_tickets_.clear();  // tickets of the old client certificate would resume the old identity
  return true;
}

bool Server::reload_tls() { return load_tls(true); }

Server::~Server() = default;

int Server::open_udp(Listener& l, const Address& addr, bool shared) {
  uv_udp_init(loop_, &l.udp);
  l.udp.data = &l;
  int rc = 0;
  if (shared) {
    Address port = addr;
    if (place_.index == 0) rc = claim_port(addr, &port);
    uv_os_sock_t fd = -1;
    if (rc == 0) rc = bind_reuseport(port, &fd);
    if (rc == 0 && (rc = uv_udp_open(&l.udp, fd)) != 0) ::close(fd);
    // uv_udp_open sets SO_REUSEADDR, which would let any socket asking for it
    // bind our port too and take datagrams meant for us.
    int off = 0;
    if (rc == 0) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &off, sizeof off);
  } else {
    rc = uv_udp_bind(&l.udp, addr.sa(), 0);
  }
  if (rc != 0) return rc;
  int receive = kUdpSocketBuffer, send = kUdpSocketBuffer;
  uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(&l.udp), &receive);
  uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(&l.udp), &send);
  receive = send = 0;  // 0 reads back what the kernel granted (twice the request, as Linux counts)
  uv_recv_buffer_size(reinterpret_cast<uv_handle_t*>(&l.udp), &receive);
  uv_send_buffer_size(reinterpret_cast<uv_handle_t*>(&l.udp), &send);
  log_->debug("listen[{}]: udp socket buffers {} bytes receive, {} send", l.index, receive, send);
  // ICMP errors (port or host unreachable) for what we send, so a request
  // to a dead next hop is answered at once (read_icmp_errors).
  uv_os_fd_t fd = -1;
  int on = 1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&l.udp), &fd) == 0) {
    if (addr.family() == AF_INET6) ::setsockopt(fd, SOL_IPV6, IPV6_RECVERR, &on, sizeof on);
    ::setsockopt(fd, SOL_IP, IP_RECVERR, &on, sizeof on);
  }
  rc = start_reader(l);
  sockaddr_storage bound{};
  int len = sizeof bound;
  if (rc == 0) rc = uv_udp_getsockname(&l.udp, reinterpret_cast<sockaddr*>(&bound), &len);
  if (rc == 0) l.bound = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&bound));
  return rc;
}

int Server::open_tcp(Listener& l, const Address& addr) {
  uv_tcp_init(loop_, &l.tcp);
  l.tcp.data = &l;
  int rc = uv_tcp_bind(&l.tcp, addr.sa(), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&l.tcp), 511, &Server::on_tcp_connection);
  sockaddr_storage bound{};
  int len = sizeof bound;
  if (rc == 0) rc = uv_tcp_getsockname(&l.tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  if (rc == 0) l.bound = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&bound));
  return rc;
}

void Server::advertise(Listener& l, std::vector<LocalEndpoint>& ours) {
  l.endpoint.transport = l.cfg.transport;
  l.endpoint.port = l.bound.port();
  if (!l.cfg.advertise.empty()) {
    auto hp = sip::parse_host_port(l.cfg.advertise);
    l.endpoint.host = std::string(hp->host);
    if (hp->port && !l.own) l.endpoint.port = hp->port;  // a worker's own port is not the one advertised
  } else if (!l.bound.is_any()) {
    l.endpoint.host = l.bound.host();
  } else {
    // Wildcard without advertise: the first non-loopback address of the family.
    auto locals = local_addresses(l.bound.family());
    l.endpoint.host = l.bound.family() == AF_INET6 ? "[::1]" : "127.0.0.1";
    for (const auto& a : locals)
      if (!is_loopback(a)) {
        l.endpoint.host = a.host();
        break;
      }
    for (const auto& a : locals) ours.push_back({l.cfg.transport, a.host(), l.bound.port()});
  }
  ours.push_back(l.endpoint);
}

bool Server::start() {
  if (!load_tls(false)) return false;
  const bool workers = place_.count > 1;
  // Every worker's listeners, in config order; TCP and TLS connections are
  // accepted by the first worker only.
  for (std::size_t i = 0; i < cfg_.listen.size(); ++i) {
    auto l = std::make_unique<Listener>();
    l->server = this;
    l->index = i;
    l->cfg = cfg_.listen[i];
    auto addr = Address::from_ip(l->cfg.host, l->cfg.port);
    if (!addr) {
      log_->error("listen[{}]: host {} is not an IP address", i, l->cfg.host);
      return false;
    }
    if (place_.index > 0) addr = place_.shared.at(i);
    auto* raw = l.get();
    listeners_.push_back(std::move(l));  // owned from here, so shutdown() closes it
    int rc = 0;
    if (raw->cfg.transport == Transport::udp) rc = open_udp(*raw, *addr, workers);
    else if (place_.index == 0) rc = open_tcp(*raw, *addr);
    else raw->bound = *addr;
    if (rc != 0) {
      log_->error("listen[{}]: cannot listen on {} {}: {}", i, config::to_string(raw->cfg.transport),
                  addr->to_string(), uv_strerror(rc));
      return false;
    }
    advertise(*raw, ours_);
    if (place_.index == 0)
      log_->info("listening {} {} (advertised as {}:{})", config::to_string(raw->cfg.transport),
                 raw->bound.to_string(), raw->endpoint.host, raw->endpoint.port);
  }
  // A worker's own UDP port per UDP listener: what it sends toward the upstream
  // (and any next hop that is not a phone's flow) leaves from there and names
  // it in Via, Record-Route and Path, so the answers come back to this worker.
  for (std::size_t i = 0; workers && i < cfg_.listen.size(); ++i) {
    const auto& shared = *listeners_[i];
    if (shared.cfg.transport != Transport::udp) continue;
    auto l = std::make_unique<Listener>();
    l->server = this;
    l->index = listeners_.size();
    l->own = true;
    l->cfg = shared.cfg;
    auto* raw = l.get();
    listeners_.push_back(std::move(l));
    auto addr = shared.bound.with_port(0);
    if (int rc = open_udp(*raw, addr, false); rc != 0) {
      log_->error("listen[{}]: cannot open a worker's own udp port on {}: {}", i, addr.ip(), uv_strerror(rc));
      return false;
    }
    advertise(*raw, own_endpoints_);
  }
  ours_.insert(ours_.end(), own_endpoints_.begin(), own_endpoints_.end());
  if (!listener_for(upstream_.transport, AF_INET) && !listener_for(upstream_.transport, AF_INET6)) {
    log_->error("no {} listener to reach the upstream {}", config::to_string(upstream_.transport), cfg_.upstream.uri);
    return false;
  }
  resolver_ = std::make_unique<dns::Resolver>(loop_, dns::Resolver::Options{cfg_.dns.servers});
  if (std::string error; !resolver_->start(&error)) {
    log_->error("dns: {}", error);
    return false;
  }
  // Resolve the upstream early so its requests are recognised from the first one.
  if (upstream_dns_.candidates.empty()) resolve_upstream();
  uv_timer_init(loop_, &pending_timer_);
  pending_timer_.data = this;
  uv_timer_start(&pending_timer_, [](uv_timer_t* t) { static_cast<Server*>(t->data)->check_pending(); }, 200, 200);

  uv_timer_init(loop_, &housekeeping_);
  housekeeping_.data = this;
  uv_timer_start(
      &housekeeping_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Server*>(t->data);
        self->bindings_.purge(Clock::now());
        if (self->challenger_) self->challenger_->purge(std::chrono::system_clock::now());
        for (const auto& line : self->limit_report_.summary(LimitClock::now())) self->log_->warn("{}", line);
      },
      10000, 10000);
  uv_check_init(loop_, &flush_check_);
  flush_check_.data = this;
  uv_check_start(&flush_check_, [](uv_check_t* c) { static_cast<Server*>(c->data)->flush_all_batches(); });
  return true;
}

std::vector<Address> Server::listen_addresses() const {
  std::vector<Address> out;
  for (const auto& l : listeners_)
    if (!l->own) out.push_back(l->bound);
  return out;
}

void Server::drain(std::function<void()> done) {
  if (drained_ || shutting_down_) {  // asked again: stop now
    auto now = std::exchange(drained_, nullptr);
    if (now) now();
    return;
  }
  // Stop accepting connections; UDP listeners stay open, since responses for
  // the transactions in flight arrive there.
  for (auto& l : listeners_)
    if (l->cfg.transport != Transport::udp && l->tcp.loop && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&l->tcp)))
      uv_close(reinterpret_cast<uv_handle_t*>(&l->tcp), nullptr);
  auto waiting = in_flight();
  log_->info("{}draining: {} transaction{} in flight, stopping within {}s", worker_label(), waiting,
             waiting == 1 ? "" : "s",
             cfg_.relay.drain_timeout.count());
  drained_ = std::move(done);
  drain_deadline_ = Clock::now() + cfg_.relay.drain_timeout;
  if (!waiting) check_pending();
}

void Server::shutdown() {
  if (shutting_down_) return;
  flush_all_batches();
  shutting_down_ = true;
  if (flush_check_.loop && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&flush_check_)))
    uv_close(reinterpret_cast<uv_handle_t*>(&flush_check_), nullptr);
  for (auto& l : listeners_) {
    if (l->reader_fd >= 0 && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&l->reader))) {
      // The dup is closed once libuv no longer watches it.
      uv_close(reinterpret_cast<uv_handle_t*>(&l->reader), [](uv_handle_t* h) {
        auto* listener = static_cast<Listener*>(h->data);
        ::close(listener->reader_fd);
        listener->reader_fd = -1;
      });
    }
    auto* h = l->cfg.transport == Transport::udp ? reinterpret_cast<uv_handle_t*>(&l->udp)
                                                 : reinterpret_cast<uv_handle_t*>(&l->tcp);
    if (h->loop && !uv_is_closing(h)) uv_close(h, nullptr);
  }
  std::vector<Connection*> open;
  for (auto& [id, c] : connections_) open.push_back(c.get());
  for (auto* c : open) close_connection(*c, "shutting down");
  for (auto* timer : {&housekeeping_, &pending_timer_})
    if (timer->loop && !uv_is_closing(reinterpret_cast<uv_handle_t*>(timer)))
      uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
  if (resolver_) resolver_->close();
  auto sum = [](const auto& counts) { return std::accumulate(counts.begin(), counts.end(), std::uint64_t{0}); };
  log_->info("{}stopped: received={} forwarded_requests={} forwarded_responses={} replied={} dropped={} rejected={}",
             worker_label(), counters_.received, counters_.forwarded_requests, counters_.forwarded_responses, counters_.replied,
             sum(counters_.dropped), sum(counters_.rejected));
  if (challenger_) {
    const auto& a = challenger_->stats();
    log_->info("{}stopped: auth challenges={} accepted={} failures={} forbidden={} source_blocks={} user_blocks={}",
               worker_label(), a.challenges, a.accepted, a.failures, a.forbidden, a.source_blocks, a.user_blocks);
  }
}

// ---- receive path ---------------------------------------------------------

int Server::start_reader(Listener& l) {
  uv_os_fd_t fd = -1;
  if (int rc = uv_fileno(reinterpret_cast<uv_handle_t*>(&l.udp), &fd); rc != 0) return rc;
  l.reader_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (l.reader_fd < 0) return uv_translate_sys_error(errno);
  if (int rc = uv_poll_init_socket(loop_, &l.reader, l.reader_fd); rc != 0) {
    ::close(l.reader_fd);
    l.reader_fd = -1;
    return rc;
  }
  l.reader.data = &l;
  return uv_poll_start(&l.reader, UV_READABLE, &Server::on_udp_readable);
}

void Server::on_udp_readable(uv_poll_t* handle, int status, int) {
  auto* l = static_cast<Listener*>(handle->data);
  auto* self = l->server;
  if (status < 0) {
    // POLLERR: IP_RECVERR queued an ICMP error (libuv stopped the handle).
    // Read it, then whatever datagrams wait, and watch again.
    self->read_icmp_errors(*l);
    self->read_datagrams(*l);
    if (self->shutting_down_) return;
    if (int rc = uv_poll_start(handle, UV_READABLE, &Server::on_udp_readable); rc != 0)
      self->log_->error("udp {}: cannot watch the socket again ({}): nothing more is read from it",
                        l->bound.to_string(), uv_strerror(rc));
    return;
  }
  self->read_datagrams(*l);
}

void Server::read_datagrams(Listener& l) {
  auto& slots = *recv_slots_;
  bool icmp_error = false;
  for (std::size_t read = 0; read < kRecvPerWakeup;) {
    slots.reset();
    int n = ::recvmmsg(l.reader_fd, slots.msgs.data(), kRecvSlots, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // An ICMP error shows once as the error of a receive; datagrams may follow it.
      if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
        icmp_error = true;
        continue;
      }
      log_->warn("udp receive error on {}: {}", l.bound.to_string(), std::strerror(errno));
      break;
    }
    reading_datagram_ = true;
    for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
      const auto& h = slots.msgs[i].msg_hdr;
      Source in{Flow{Transport::udp, Address::from_sockaddr(static_cast<const sockaddr*>(h.msg_name)), 0,
                     static_cast<std::uint32_t>(l.index)},
                l.index};
      if (h.msg_flags & MSG_TRUNC) {
        counters_.drop(DropReason::truncated_datagram);
        log_->warn("drop: datagram from {} truncated (over {} bytes)", in.flow.remote.to_string(), kDatagramBuffer);
        continue;
      }
      if (auto bytes = slots.datagram(i); !bytes.empty()) handle_bytes(bytes, in, sip::Framing::datagram);
    }
    reading_datagram_ = false;
    read += static_cast<std::size_t>(n);
    if (static_cast<std::size_t>(n) < kRecvSlots || shutting_down_) break;
  }
  // The burst is read: what it produced leaves now.
  flush_batch(l);
  if (icmp_error) read_icmp_errors(l);
}

void Server::on_tcp_connection(uv_stream_t* server_stream, int status) {
  auto* l = static_cast<Listener*>(server_stream->data);
  auto* self = l->server;
  if (status < 0) {
    self->log_->warn("tcp accept error on {}: {}", l->bound.to_string(), uv_strerror(status));
    return;
  }
  auto owned = std::make_unique<Connection>();
  owned->server = self;
  owned->id = self->next_connection_id_++;
  owned->listener = l->index;
  uv_tcp_init(self->loop_, &owned->tcp);
  owned->tcp.data = owned.get();
  uv_timer_init(self->loop_, &owned->idle);
  owned->idle.data = owned.get();
  owned->open_handles = 2;
  auto* c = owned.get();
  self->connections_.emplace(c->id, std::move(owned));
  if (uv_accept(server_stream, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    self->close_connection(*c, "accept failed");
    return;
  }
  sockaddr_storage peer{};
  int len = sizeof peer;
  uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&peer), &len);
  c->remote = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&peer));
  sockaddr_storage local{};
  len = sizeof local;
  if (uv_tcp_getsockname(&c->tcp, reinterpret_cast<sockaddr*>(&local), &len) == 0)
    c->local = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local));
  if (self->connections_.size() > self->cfg_.relay.max_tcp_connections) {
    self->limit_hit(Limit::max_tcp_connections, [&] {
      return fmt::format("tcp connection from {} refused: {} connections open (relay.max_tcp_connections)",
                         c->remote.to_string(), self->connections_.size() - 1);
    });
    self->close_connection(*c, "connection limit");
    return;
  }
  auto admitted = self->upstream_ip(c->remote) ? SourceLimits::Admission::uncounted
                                                : self->source_limits_.open_connection(c->remote.ip(), LimitClock::now());
  if (admitted == SourceLimits::Admission::refused) {
    self->limit_hit(Limit::max_connections_per_source, [&] {
      return fmt::format("tcp connection from {} refused: {} connections from that address (limits.max_connections_per_source)",
                         c->remote.to_string(), self->cfg_.limits.max_connections_per_source);
    });
    self->close_connection(*c, "connection limit per source");
    return;
  }
  c->counted_for_source = admitted == SourceLimits::Admission::counted;
  if (l->cfg.transport == Transport::tls) {
    c->transport = Transport::tls;
    c->tls = tls::Session::accept(self->listen_tls_[l->index]);
    if (!c->tls) {
      ++self->counters_.tls_failures;
      self->close_connection(*c, "cannot create a TLS session");
      return;
    }
  }
  c->connected = true;
  uv_tcp_nodelay(&c->tcp, 1);
  self->connection_by_remote_[connection_key(c->remote, c->transport)] = c->id;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), &Server::on_tcp_alloc, &Server::on_tcp_read);
  self->touch(*c);
}

void Server::on_tcp_alloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  if (c->tls) {
    // Ciphertext is decrypted into inbuf at once, so one shared buffer serves all.
    buf->base = c->server->tls_buffer_.data();
    buf->len = c->server->tls_buffer_.size();
    return;
  }
  // Read straight into the connection's buffer tail: no copy for framing.
  auto used = c->inbuf.size();
  c->inbuf.resize(used + kStreamChunk);
  buf->base = c->inbuf.data() + used;
  buf->len = kStreamChunk;
}

void Server::on_tcp_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  auto* self = c->server;
  auto filled = nread > 0 ? static_cast<std::size_t>(nread) : 0;
  // Give back the part of the chunk that was not filled.
  if (!c->tls) c->inbuf.resize(static_cast<std::size_t>(buf->base - c->inbuf.data()) + filled);
  if (nread < 0) {
    if (c->tls && !c->tls->established() && nread == UV_EOF) {
      ++self->counters_.tls_failures;
      self->log_->warn("tls handshake with {} failed: closed by the peer during the handshake",
                       self->describe(flow_of(*c)));
    }
    const char* why = nread == UV_EOF ? "closed by peer" : uv_strerror(static_cast<int>(nread));
    if (auto unfinished = c->inbuf.find_first_not_of("\r\n"); unfinished != std::string::npos)
      self->log_->warn("{} connection from {} closed mid-message: {} bytes of an unfinished message discarded ({})",
                       config::to_string(c->transport), self->describe(flow_of(*c)), c->inbuf.size() - unfinished,
                       why);
    self->close_connection(*c, why);
    return;
  }
  if (nread == 0) return;
  self->touch(*c);
  if (c->tls && !self->receive_tls(*c, std::string_view(buf->base, filled))) return;
  self->drain_stream(*c);
  if (c->tls && c->tls->closed_by_peer() && !c->closing) self->close_connection(*c, "TLS close_notify from peer");
}

bool Server::receive_tls(Connection& c, std::string_view ciphertext) {
  auto& session = *c.tls;
  bool ok = session.receive(ciphertext, c.inbuf);
  if (auto out = session.take_output(); !out.empty()) write_raw(c, std::move(out));  // handshake records, alerts
  if (!ok) {
    ++counters_.tls_failures;
    log_->warn("tls {} with {} failed: {}", session.established() ? "connection" : "handshake", describe(flow_of(c)),
               session.error());
    // Requests waiting for this connection learn it now (503), as with a failed connect.
    auto failures = std::move(c.on_failure);
    c.on_failure.clear();
    counters_.send_failures += failures.size();
    close_connection(c, "TLS failure");
    for (auto& [reply, back] : failures) send_local_reply(back, std::move(reply));
    return false;
  }
  if (session.take_established_event()) {
    log_->info("tls established with {}: {}", describe(flow_of(c)), session.describe());
    c.on_failure.clear();
  }
  return true;
}

void Server::drain_stream(Connection& c) {
  std::size_t off = 0;
  Source in{flow_of(c), c.listener};
  while (!c.closing && off < c.inbuf.size()) {
    std::string_view view(c.inbuf.data() + off, c.inbuf.size() - off);
    // RFC 5626 4.4.1 keep-alive: a double CRLF ping gets a single CRLF pong;
    // stray CRLFs between messages are skipped (RFC 3261 7.5).
    if (view.starts_with("\r\n\r\n")) {
      write(c, "\r\n");
      off += 4;
      continue;
    }
    if (view == "\r\n") break;  // maybe the first half of a ping
    if (view.starts_with("\r\n")) {
      off += 2;
      continue;
    }
    auto framed = sip::frame_stream(view, limits_);
    if (!framed) {
      if (framed.error().code == Errc::incomplete) break;
      reject_malformed(view, in, framed.error());
      close_connection(c, "unframeable stream");  // framing is lost: nothing after it can be trusted
      return;
    }
    handle_bytes(view.substr(0, *framed), in, sip::Framing::stream);
    off += *framed;
  }
  if (!c.closing) c.inbuf.erase(0, off);
}

void Server::handle_bytes(std::string_view bytes, const Source& in, sip::Framing framing) {
  ++counters_.received;
  auto parsed = sip::parse(bytes, framing, limits_);
  if (!parsed) {
    reject_malformed(bytes, in, parsed.error());
    return;
  }
  if (!lab_key_.empty() && on_lab_path(in.flow)) {
    handle_lab_arrival(*parsed, in, framing);
    return;
  }
  handle_message(*parsed, in, parsed->raw, nullptr);
}

void Server::replay(std::string_view bytes, const Source& in, sip::Framing framing) {
  // Observers (and the lab's seal check) saw this message when it arrived; a
  // second look would count it twice, or as unsealed once its seal is gone.
  auto parsed = sip::parse(bytes, framing, limits_);
  if (!parsed) return;  // it parsed on arrival: cannot happen
  if (parsed->is_request) handle_request(*parsed, in);
  else handle_response(*parsed, in);
}

void Server::handle_lab_arrival(const sip::Message& m, const Source& in, sip::Framing framing) {
  auto seal = diag::check_seal(m, lab_key_);
  if (!seal.header) {
    handle_message(m, in, m.raw, &seal);
    return;
  }
  // The seal never leaves the lab path: what follows sees the message without it.
  auto unsealed = diag::strip_seal(m, seal);
  auto stripped = sip::parse(unsealed, framing, limits_);
  if (!stripped) {  // one header line less cannot break a message that parsed; relay it as it came
    handle_message(m, in, m.raw, &seal);
    return;
  }
  handle_message(*stripped, in, m.raw, &seal);
}

void Server::handle_message(const sip::Message& m, const Source& in, std::string_view wire,
                            const diag::SealCheck* seal) {
  // A flood from one address is dropped before it costs anything more (no
  // answer: a reply would double the flood); the upstream is never limited.
  if (m.is_request && cfg_.limits.max_requests_per_source &&
      !source_limits_.allow_request(in.flow.remote.ip(), LimitClock::now()) && !upstream_ip(in.flow.remote)) {
    limit_hit(Limit::max_requests_per_source, [&] {
      return fmt::format("drop: {} from {} call-id={}: over {} requests/s from that address (limits.max_requests_per_source)",
                         m.method, describe(in.flow), m.value(sip::HeaderId::CallId),
                         cfg_.limits.max_requests_per_source);
    });
    return;
  }
  if (m.is_request) counters_.in.request(m.method);
  else counters_.in.response(m.status);
  // A 503 answered by failover never reaches the phone, so the diagnosis (which
  // follows what the phone lives through) does not see it either.
  if (!m.is_request && !pending_.empty() && !note_response(m, in)) return;
  if (!observers_.empty()) {
    std::string self;
    if (observers_want_self_) {
      auto conn = connections_.find(in.flow.connection_id);
      self = self_address(*listeners_[in.listener], in.flow.remote,
                          conn == connections_.end() ? nullptr : conn->second.get());
    }
    observe(diag::Direction::received, m, in.flow, self, wire, false, seal);
  }
  if (seal && seal->probe && m.is_request && cfg_.lab.role == config::LabRole::outer) {
    answer_probe(m, in, *seal);
    return;
  }
  if (m.is_request) handle_request(m, in);
  else handle_response(m, in);
}

void Server::answer_probe(const sip::Message& m, const Source& in, const diag::SealCheck& seal) {
  log_->info("lab: probe {} from {} (seal {}): {} field(s) changed on the way", m.method, describe(in.flow), seal.id,
             seal.changes.size());
  if (m.method == "ACK") return;  // ends the probe INVITE's transaction; nothing to answer
  ++counters_.replied;
  send_local_reply(in.flow, make_probe_answer(m, in.flow.remote, seal, secret_));
}

void Server::reject_malformed(std::string_view bytes, const Source& in, const Error& error) {
  const auto limit = limit_of(error.code);  // counted by Counters::malformed
  auto salvaged = sip::salvage(bytes, limits_);
  int status = error.code == Errc::bad_version ? 505 : 400;
  const char* reason = status == 505 ? "Version Not Supported" : "Bad Request";
  auto reply = make_reply(salvaged, in.flow.remote, status, reason, error.detail, secret_);
  std::string call_id;
  for (const auto& [id, v] : salvaged.headers)
    if (id == sip::HeaderId::CallId) call_id = std::string(v.substr(0, 128));
  auto line = [&] {
    return reply.empty() ? fmt::format("drop: malformed message from {} ({} bytes, call-id={}): {}", describe(in.flow),
                                       bytes.size(), call_id.empty() ? "?" : call_id, error.detail)
                         : fmt::format("reject: {} {} to malformed {} from {} (call-id={}): {}", status, reason,
                                       salvaged.method, describe(in.flow), call_id.empty() ? "?" : call_id, error.detail);
  };
  counters_.malformed(error.code, !reply.empty());
  if (limit) log_limit(*limit, line);  // a limit hit is logged once per interval, not per packet
  else log_->warn("{}", line());
  if (!reply.empty()) send_to_flow(in.flow, std::move(reply));
}

void Server::handle_request(const sip::Message& m, const Source& in) {
  auto tag = m.method == "ACK" ? local_tag(m, secret_) : std::string();  // only an ACK is matched against it
  RoutingContext ctx{ours_, upstream_, bindings_, Clock::now(), tag};
  auto d = route_request(m, proxy::Inbound{in.flow, from_upstream(in.flow)}, ctx, cfg_.relay.record_route, cfg_.relay.add_path);
  switch (d.kind) {
    case RequestDecision::Kind::absorb:
      ++counters_.absorbed;
      log_->debug("absorb: {} from {} call-id={}: {}", m.method, describe(in.flow), m.value(sip::HeaderId::CallId),
                  d.detail);
      return;
    case RequestDecision::Kind::reply:
      send_reply(m, in, d.status, d.reason, d.detail, d.headers);
      return;
    case RequestDecision::Kind::forward: {
      // Draining: what is under way finishes (ACK, CANCEL, in-dialog requests), nothing new starts.
      if (drained_ && m.method != "ACK" && m.method != "CANCEL" && m.to_tag.empty()) {
        send_reply(m, in, 503, "Service Unavailable", "shutting down");
        return;
      }
      const sip::Header* own_credentials = nullptr;
      if (challenger_ && !from_upstream(in.flow) && answer_challenge(m, in, &own_credentials)) return;
      forward_request(m, in, d, own_credentials);
      return;
    }
  }
}

bool Server::answer_challenge(const sip::Message& m, const Source& in, const sip::Header** own_credentials) {
  auto source_ip = in.flow.remote.ip();
  auto d = challenger_->check(m, source_ip, std::chrono::system_clock::now());
  using Kind = auth::Challenger::Decision::Kind;
  auto call_id = m.value(sip::HeaderId::CallId);
  // The username is the client's: one word of visible characters, so it can
  // neither split a line nor shift the fields after it.
  auto user = d.user.empty() ? std::string("-") : diag::printable(d.user);
  std::replace(user.begin(), user.end(), ' ', '?');
  switch (d.kind) {
    case Kind::pass:
      return false;
    case Kind::accept:
      log_->info("auth: accepted {} from {} user={} call-id={}", m.method, describe(in.flow), user, call_id);
      *own_credentials = d.ours;
      return false;
    case Kind::challenge:
      ++counters_.replied;
      log_->info("auth: 407 to {} from {} user={} call-id={}: {}{}", m.method, describe(in.flow), user, call_id,
                 d.reason, d.failures ? fmt::format(" (failure {} of {})", d.failures, cfg_.challenge.max_failures) : "");
      send_local_reply(in.flow, make_reply(m, in.flow.remote, 407, "Proxy Authentication Required", {}, secret_, d.headers));
      return true;
    case Kind::forbid:
      ++counters_.replied;
      // One stable line per block, for fail2ban and the like (README: the filter). A
      // username block has its own prefix: its source may be a phone that made one
      // typo after an attacker's failures, not an address to ban.
      if (d.source_block.count())
        log_->warn("auth-block: source={} user={} failures={} blocked_for={}s", source_ip, user, d.failures,
                   d.source_block.count());
      if (d.user_block.count())
        log_->warn("auth-user-block: source={} user={} failures={} blocked_for={}s", source_ip, user,
                   d.user_failures, d.user_block.count());
      log_->info("auth: 403 to {} from {} user={} call-id={}: {}", m.method, describe(in.flow), user, call_id, d.reason);
      send_local_reply(in.flow, make_reply(m, in.flow.remote, 403, "Forbidden", d.reason, secret_));
      return true;
  }
  return false;
}

void Server::handle_response(const sip::Message& m, const Source& in) {
  auto d = route_response(m, ours_);
  if (!d.forward) {
    counters_.drop(DropReason::response_unroutable);
    log_->warn("drop: {} {} response from {} call-id={}: {}", m.status, m.cseq_method, describe(in.flow),
               m.value(sip::HeaderId::CallId), d.drop_reason);
    return;
  }
  if (m.cseq_method == "REGISTER" && m.status >= 200) {
    auto added = bindings_.on_register_response(m, Clock::now());
    if (added) log_->debug("binding: {} contact(s) of {} via {}", added, m.value(sip::HeaderId::To), describe(in.flow));
  }
  auto addresses = resolve(d.target.host, m.raw, in, sip::Framing::datagram);
  if (!addresses) return;  // replayed once resolved
  if (addresses->empty()) {
    counters_.drop(DropReason::unresolvable);
    log_->warn("drop: {} response call-id={}: cannot resolve {}", m.status, m.value(sip::HeaderId::CallId),
               d.target.host);
    return;
  }
  auto dst = usable_address(*addresses, d.target.transport, d.target.port);
  if (!dst) {
    counters_.drop(DropReason::no_listener);
    log_->warn("drop: {} response call-id={}: no listener for any address of {}", m.status,
               m.value(sip::HeaderId::CallId), d.target.host);
    return;
  }
  ++counters_.forwarded_responses;
  Flow out{d.target.transport, *dst, d.target.connection, d.target.listener};
  send(out, forward_response(m), nullptr, Shown{&m}, tls_name_for(d.target));
}

void Server::forward_request(const sip::Message& m, const Source& in, const RequestDecision& d,
                             const sip::Header* own_credentials) {
  Address dst;
  Transport transport = d.target.transport;
  const auto branch = compute_branch(m);
  if (d.target.flow) {
    dst = d.target.flow->remote;
  } else if (d.target.upstream) {
    const auto* candidates = upstream_candidates(m.raw, in, framing_of(in.flow.transport));
    if (!candidates) return;  // replayed once resolved
    const auto* chosen = choose_upstream(*candidates, branch);
    if (!chosen) {
      send_reply(m, in, 503, "Service Unavailable", "cannot resolve the upstream");
      return;
    }
    transport = chosen->transport;
    dst = chosen->address;
  } else {
    auto addresses = resolve(d.target.host, m.raw, in, framing_of(in.flow.transport));
    if (!addresses) return;
    if (addresses->empty()) {
      send_reply(m, in, 503, "Service Unavailable", "cannot resolve the next hop");
      return;
    }
    auto usable = usable_address(*addresses, d.target.transport, d.target.port);
    if (!usable) {
      send_reply(m, in, 503, "Service Unavailable", "no listener for the next hop's address family");
      return;
    }
    dst = *usable;
  }
  // A known flow (a registered phone) is reached from the socket it talks to.
  auto* out = listener_for(d.target.listener, transport, dst.family());
  if (!out) {
    send_reply(m, in, 503, "Service Unavailable", "no listener for the next hop's transport");
    return;
  }
  Flow out_flow{transport, dst, d.target.connection, static_cast<std::uint32_t>(out->index)};
  RequestEdits how;
  how.out = out->endpoint;
  how.in = listeners_[in.listener]->endpoint;
  how.inbound = &in.flow;
  how.outbound = d.target.flow ? &*d.target.flow : nullptr;
  how.routes_to_pop = d.routes_to_pop;
  how.strict_route = d.strict_route;
  how.record_route = d.record_route;
  how.add_path = d.add_path;
  how.add_content_length = transport != Transport::udp;
  how.remove = own_credentials;
  how.branch = branch;
  // The inner side of a lab sits behind the device under test, most often a NAT.
  how.ask_rport = cfg_.lab.role == config::LabRole::inner && !lab_key_.empty() && on_lab_path(out_flow);
  auto bytes = sw::proxy::forward_request(m, in.flow.remote, how);
  if (d.add_path) bindings_.remember_register(branch, m, in.flow, Clock::now());
  ++counters_.forwarded_requests;
  const auto key = connection_key(dst, transport);
  const bool remembered = m.method != "ACK" && m.method != "CANCEL" &&
                          remember_request(branch, key, d.target.upstream && !d.target.flow, m, in, own_credentials,
                                           bytes);
  // A remembered request learns of a failure through request_failed (the next
  // upstream target, or a 503); any other is answered here.
  FailureReply failure;
  if (m.method != "ACK" && !remembered) {
    failure = [&] {
      return std::make_pair(make_reply(m, in.flow.remote, 503, "Service Unavailable", "next hop unreachable", secret_),
                            in.flow);
    };
  }
  if (!send(out_flow, std::move(bytes), failure, Shown{&m}, tls_name_for(d.target)) && remembered) {
    // Unless a lost connection already moved it on or answered it.
    auto it = pending_.find(branch);
    if (it != pending_.end() && it->second.candidate == key)
      request_failed(branch, 503, "Service Unavailable", "next hop unreachable");
  }
}

int Server::send_datagram(Listener& l, std::string bytes, const Address& dst) {
  uv_buf_t buf = uv_buf_init(bytes.data(), static_cast<unsigned>(bytes.size()));
  int rc = uv_udp_try_send(&l.udp, &buf, 1, dst.sa());
  // IP_RECVERR: an ICMP error for an earlier datagram (read from the error
  // queue later) fails the next send on the socket once; that send is not at fault.
  if (rc == UV_ECONNREFUSED || rc == UV_EHOSTUNREACH || rc == UV_ENETUNREACH)
    rc = uv_udp_try_send(&l.udp, &buf, 1, dst.sa());
  if (rc != UV_EAGAIN) return rc;
  auto* req = new UdpSendReq;  // freed in the callback
  req->data = std::move(bytes);
  buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  req->req.data = this;
  rc = uv_udp_send(&req->req, &l.udp, &buf, 1, dst.sa(), [](uv_udp_send_t* r, int status) {
    auto* self = static_cast<Server*>(r->data);
    if (status < 0) {
      ++self->counters_.send_failures;
      self->log_->warn("udp send failed: {}", uv_strerror(status));
    }
    delete reinterpret_cast<UdpSendReq*>(r);
  });
  if (rc < 0) delete req;
  return rc;
}

void Server::flush_batch(Listener& l) {
  if (l.batch.empty()) return;
  // Taken out first: a failed request fails over, and its next send may be
  // batched again (it leaves with the next flush).
  std::vector<Listener::Datagram> batch;
  batch.swap(l.batch);
  uv_os_fd_t fd = -1;
  // Behind datagrams libuv still queues (EAGAIN earlier), order is kept by going through it.
  const bool direct = l.udp.send_queue_count == 0 && uv_fileno(reinterpret_cast<uv_handle_t*>(&l.udp), &fd) == 0;
  // Filled entry by entry below: zeroing all of them costs more than a burst's sends.
  std::array<mmsghdr, kSendBatch> msgs;
  std::array<iovec, kSendBatch> iov;
  std::size_t done = 0;
  while (done < batch.size()) {
    int sent = 0;
    if (direct) {
      const auto n = std::min(batch.size() - done, kSendBatch);
      for (std::size_t i = 0; i < n; ++i) {
        auto& d = batch[done + i];
        iov[i] = {d.bytes.data(), d.bytes.size()};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_name = const_cast<sockaddr*>(d.to.sa());
        msgs[i].msg_hdr.msg_namelen = d.to.len();
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      sent = ::sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
    }
    if (sent > 0) {
      done += static_cast<std::size_t>(sent);
      continue;
    }
    // The datagram at `done` did not go: one at a time it gets the ICMP retry
    // and libuv's queue on EAGAIN. A request that still cannot go fails its
    // transaction, as a send that failed at once would have.
    auto& d = batch[done++];
    auto branch = d.bytes.starts_with("SIP/") ? std::string() : top_via_branch(sip::salvage(d.bytes));
    if (int rc = send_datagram(l, std::move(d.bytes), d.to); rc < 0) {
      send_failed(Transport::udp, d.to, uv_strerror(rc));
      if (waits_on(branch, d.to)) request_failed(branch, 503, "Service Unavailable", "next hop unreachable");
    }
  }
  if (l.batch.empty()) {  // keeps the capacity for the next burst
    batch.clear();
    l.batch.swap(batch);
  }
}

void Server::send_failed(Transport transport, const Address& to, const char* why) {
  ++counters_.send_failures;
  log_->warn("send to {} {} failed: {}", config::to_string(transport), to.to_string(), why);
}

void Server::flush_all_batches() {
  for (auto& l : listeners_)
    if (l->cfg.transport == Transport::udp) flush_batch(*l);
}

void Server::send_reply(const sip::Message& m, const Source& in, int status, const char* reason, const char* detail,
                        std::string_view headers) {
  if (m.method == "ACK") return;  // never answered (RFC 3261 17.1.1.3)
  ++counters_.replied;
  log_->info("reply: {} {} to {} from {} call-id={}: {}", status, reason, m.method, describe(in.flow),
             m.value(sip::HeaderId::CallId), detail);
  send_local_reply(in.flow, make_reply(m, in.flow.remote, status, reason, detail, secret_, headers));
}

void Server::send_to_flow(const Flow& flow, std::string bytes) { send(flow, std::move(bytes), nullptr, Shown{}); }

bool Server::send(const Flow& to, std::string bytes, const FailureReply& on_failure, Shown shown,
                  std::string_view tls_name) {
  if (shutting_down_) return true;  // handles are closing: nothing new goes out, and nothing is answered
  if (!lab_key_.empty() && (shown.relayed || shown.own_reply) && on_lab_path(to))
    bytes = sealed(std::move(bytes), to.transport);
  // Once the socket is chosen: counted, and shown to the observers.
  auto handed = [&](const Listener& l, const Connection* c) {
    counters_.out.start_line(bytes);
    if (observers_.empty() || (!shown.relayed && !shown.own_reply)) return;
    if (shown.relayed && std::none_of(observers_.begin(), observers_.end(),
                                      [](const diag::Observer* o) { return o->wants_relayed_copies(); }))
      return;
    auto self = observers_want_self_ ? self_address(l, to.remote, c) : std::string();
    if (shown.relayed) {
      observe(diag::Direction::sent, *shown.relayed, to, self, bytes);
    } else if (auto parsed = sip::parse(bytes, sip::Framing::datagram, limits_)) {
      observe(diag::Direction::sent, *parsed, to, self, bytes, true);
    }
  };
  const auto transport = to.transport;
  const auto& dst = to.remote;
  const auto connection_hint = to.connection_id;
  auto fail = [&](const char* why) {
    send_failed(transport, dst, why);
    if (on_failure) {
      auto [reply, back] = on_failure();
      send_local_reply(back, std::move(reply));
    }
    return false;
  };
  if (transport == Transport::udp) {
    auto* l = listener_for(to.listener, Transport::udp, dst.family());
    if (!l) return fail("no UDP listener of that address family");
    handed(*l, nullptr);
    // Read in a burst, it leaves with the burst's other datagrams, unless a
    // failure must be answered at once (flush_batch fails a remembered
    // request's transaction itself).
    if (reading_datagram_ && !on_failure) {
      l->batch.push_back({std::move(bytes), dst});
      if (l->batch.size() >= kSendBatch) flush_batch(*l);
      return true;
    }
    flush_batch(*l);  // what waits on this socket leaves first
    int rc = send_datagram(*l, std::move(bytes), dst);
    return rc >= 0 || fail(uv_strerror(rc));
  }
  Connection* c = nullptr;
  if (connection_hint) {
    auto it = connections_.find(connection_hint);
    if (it != connections_.end() && !it->second->closing && it->second->transport == transport) c = it->second.get();
  }
  if (!c) c = find_connection(dst, transport);
  if (!c) {
    c = open_connection(dst, transport, tls_name);
    if (!c) return fail(transport == Transport::tls ? "cannot open a TLS connection" : "cannot open a TCP connection");
  }
  handed(*listeners_[c->listener], c);
  if (!c->connected || (c->tls && !c->tls->established())) {
    // Until TCP (and TLS) is up; a failure of either sends these replies.
    if (on_failure) c->on_failure.push_back(on_failure());
    if (!c->connected) {
      c->queued.push_back(std::move(bytes));
      return true;
    }
  }
  write(*c, std::move(bytes));
  return true;
}

std::string Server::tls_name_for(const Target& target) const {
  if (target.flow) return {};  // a known flow: its connection is reused; a new one can only check the IP
  if (target.host == upstream_.host && target.port == upstream_.port)
    return cfg_.upstream.tls.server_name.empty() ? upstream_.host : cfg_.upstream.tls.server_name;
  return target.host;
}

const std::vector<Address>* Server::resolve(const std::string& host, std::string_view replay_bytes, const Source& in,
                                            sip::Framing framing) {
  // IP literals need no lookup and take no cache entry.
  if (auto literal = Address::from_ip(host, 0)) {
    literal_ = {*literal};
    return &literal_;
  }
  auto now = Clock::now();
  auto it = dns_.find(host);
  if (it == dns_.end()) {
    if (dns_.size() >= kMaxDnsEntries)
      std::erase_if(dns_, [&](const auto& kv) { return !kv.second.pending && kv.second.expires < now; });
    if (dns_.size() >= kMaxDnsEntries) {
      // Hostile traffic naming endless hosts must not grow the cache.
      counters_.hit(Limit::dns_cache);
      log_->warn("cannot resolve {}: DNS cache full ({} names)", host, dns_.size());
      literal_.clear();
      return &literal_;
    }
    it = dns_.emplace(host, DnsEntry{}).first;
  }
  auto& e = it->second;
  if (!e.pending && e.expires >= now) return &e.addresses;
  if (!replay_bytes.empty()) wait_for_dns(e.waiters, replay_bytes, in, framing, host);
  if (e.pending) return nullptr;
  e.pending = true;
  // An explicit port means addresses only (RFC 3263 4.2): the port is the caller's.
  dns::Query q{host, std::uint16_t{5060}, Transport::udp, false, {}};
  resolver_->resolve(q, [this, host](dns::Resolution r) {
    auto& entry = dns_[host];
    entry.pending = false;
    std::vector<Address> fresh;
    for (const auto& c : r.candidates) fresh.push_back(c.address);
    if (!fresh.empty()) {
      entry.addresses = std::move(fresh);
    } else {
      // A failed refresh keeps the last good answer (retried soon): a DNS
      // blip must not make a next hop unknown.
      log_->warn("cannot resolve {}: {}{}", host, r.error, entry.addresses.empty() ? "" : " (keeping the last answer)");
    }
    entry.expires = Clock::now() + r.ttl;
    auto waiters = std::move(entry.waiters);
    entry.waiters.clear();
    for (auto& w : waiters) w();
  });
  return nullptr;
}

void Server::wait_for_dns(std::vector<std::function<void()>>& waiters, std::string_view bytes, const Source& in,
                          sip::Framing framing, std::string_view name) {
  if (replays_pending_ >= kMaxReplaysPending) {
    counters_.drop(DropReason::dns_backlog);
    counters_.hit(Limit::dns_waiting);
    log_->warn("drop: message waiting for {}: {} messages already wait for DNS", name, replays_pending_);
    return;
  }
  ++replays_pending_;
  waiters.emplace_back([this, copy = std::string(bytes), in, framing] {
    --replays_pending_;
    if (!shutting_down_) replay(copy, in, framing);
  });
}

// ---- upstream: RFC 3263 candidates and failover ----------------------------

const std::vector<dns::Candidate>* Server::upstream_candidates(std::string_view replay_bytes, const Source& in,
                                                               sip::Framing framing) {
  auto& u = upstream_dns_;
  if (!u.pending && u.expires < Clock::now()) resolve_upstream();
  // A stale answer serves while the refresh runs: relaying never waits for DNS twice.
  if (!u.candidates.empty()) return &u.candidates;
  if (!u.pending) return &u.candidates;  // asked and failed: empty (the caller answers 503)
  if (!replay_bytes.empty()) wait_for_dns(u.waiters, replay_bytes, in, framing, upstream_.host);
  return nullptr;
}

void Server::resolve_upstream() {
  upstream_dns_.pending = true;
  dns::Query q;
  q.host = upstream_.host;
  if (cfg_.upstream.port_given) q.port = upstream_.port;
  if (cfg_.upstream.transport_given || cfg_.upstream.sips) q.transport = upstream_.transport;
  q.sips = cfg_.upstream.sips;
  for (const auto& l : listeners_)
    if (std::find(q.usable.begin(), q.usable.end(), l->cfg.transport) == q.usable.end())
      q.usable.push_back(l->cfg.transport);
  resolver_->resolve(q, [this](dns::Resolution r) {
    auto& u = upstream_dns_;
    u.pending = false;
    u.expires = Clock::now() + r.ttl;
    if (!r.candidates.empty()) {
      if (r.trace != u.trace) log_->info("upstream {}: {}", cfg_.upstream.uri, r.trace);
      u.trace = std::move(r.trace);
      u.candidates = std::move(r.candidates);
    } else {
      log_->warn("cannot resolve the upstream {}: {}{}", cfg_.upstream.uri, r.error,
                 u.candidates.empty() ? "" : " (keeping the last answer)");
    }
    auto waiters = std::move(u.waiters);
    u.waiters.clear();
    for (auto& w : waiters) w();
  });
}

bool Server::is_down(const std::string& key, Clock::time_point now) const {
  auto it = down_until_.find(key);
  return it != down_until_.end() && it->second > now;
}

void Server::mark_down(const std::string& key, std::chrono::seconds how_long, const std::string& why) {
  auto now = Clock::now();
  if (!is_down(key, now))
    log_->warn("upstream {} marked down for {}s: {}", key, how_long.count(), why);
  down_until_[key] = now + how_long;
}

const dns::Candidate* Server::choose_upstream(const std::vector<dns::Candidate>& candidates, const std::string& branch) {
  auto now = Clock::now();
  auto it = pending_.find(branch);
  const PendingRequest* earlier = it == pending_.end() ? nullptr : &it->second;
  auto tried = [&](const std::string& key) { return earlier && earlier->tried(key); };
  auto first_usable = [&]() -> const dns::Candidate* {
    for (const auto& c : candidates)
      if (usable(c)) return &c;
    return nullptr;
  };
  // Nothing down and nothing tried (most requests): no candidate key to build.
  if (!earlier && down_until_.empty()) return first_usable();
  // A retransmission follows its first copy, unless that target was given up.
  if (earlier && !is_down(earlier->candidate, now))
    for (const auto& c : candidates)
      if (connection_key(c.address, c.transport) == earlier->candidate && usable(c)) return &c;
  for (const auto& c : candidates) {
    auto key = connection_key(c.address, c.transport);
    if (usable(c) && !is_down(key, now) && !tried(key)) return &c;
  }
  // Every untried candidate is down: the first untried one still gets a chance.
  for (const auto& c : candidates)
    if (usable(c) && !tried(connection_key(c.address, c.transport))) return &c;
  return first_usable();
}

bool Server::has_alternative(const std::vector<dns::Candidate>& candidates, const std::string& chosen,
                             const std::string& branch) {
  auto now = Clock::now();
  auto it = pending_.find(branch);
  for (const auto& c : candidates) {
    auto key = connection_key(c.address, c.transport);
    if (key == chosen || !usable(c) || is_down(key, now)) continue;
    if (it != pending_.end() && it->second.tried(key)) continue;
    return true;
  }
  return false;
}

bool Server::remember_request(const std::string& branch, const std::string& candidate, bool upstream,
                              const sip::Message& m, const Source& in, const sip::Header* own_credentials,
                              const std::string& sent) {
  auto [it, inserted] = pending_.try_emplace(branch);
  if (inserted && pending_.size() > cfg_.limits.max_pending_requests) {
    pending_.erase(it);  // beyond the bound a request is relayed all the same, without failover or a 408
    limit_hit(Limit::max_pending_requests, [&] {
      return fmt::format("{} from {} call-id={} relayed without failover or a timeout answer: {} requests pending "
                         "(limits.max_pending_requests)",
                         m.method, describe(in.flow), m.value(sip::HeaderId::CallId), pending_.size());
    });
    return false;
  }
  auto& r = it->second;
  auto now = Clock::now();
  if (!inserted && r.candidate == candidate) return true;  // a retransmission: its clock runs from the first copy
  if (inserted) {
    r.original = std::string(m.raw);
    r.in = in;
    r.upstream = upstream;
    r.invite = m.method == "INVITE";
    r.first_sent = now;
    if (own_credentials) r.own_credentials = static_cast<std::size_t>(own_credentials - m.headers.data());
  }
  if (!inserted) r.earlier.push_back(std::move(r.candidate));
  r.candidate = candidate;
  r.sent = now;
  r.answered = false;
  if (r.invite) r.forwarded = sent;
  return true;
}

bool Server::fail_over(const std::string& branch) {
  auto it = pending_.find(branch);
  if (it == pending_.end() || !it->second.upstream) return false;
  if (!has_alternative(upstream_dns_.candidates, it->second.candidate, branch)) return false;
  auto original = it->second.original;  // the entry is updated while it is forwarded again
  auto in = it->second.in;
  auto own = it->second.own_credentials;
  auto parsed = sip::parse(original, framing_of(in.flow.transport), limits_);
  RequestDecision d;
  if (parsed) {
    RoutingContext ctx{ours_, upstream_, bindings_, Clock::now(), {}};
    d = route_request(*parsed, proxy::Inbound{in.flow, false}, ctx, cfg_.relay.record_route, cfg_.relay.add_path);
  }
  if (!parsed || d.kind != RequestDecision::Kind::forward || !d.target.upstream) return false;
  const sip::Header* own_credentials = own && *own < parsed->headers.size() ? &parsed->headers[*own] : nullptr;
  forward_request(*parsed, in, d, own_credentials);
  return true;
}

void Server::request_failed(const std::string& branch, int status, const char* reason, const std::string& why) {
  auto it = pending_.find(branch);
  if (it == pending_.end()) return;
  if (it->second.upstream) {
    mark_down(it->second.candidate, cfg_.upstream.retry_after, why);
    if (fail_over(branch)) return;
    it = pending_.find(branch);  // forwarding again may have changed the table
    if (it == pending_.end()) return;
  }
  auto entry = it->second;
  if (status == 408) {
    it->second.timed_out = true;  // kept until its age runs out, so a late answer is not relayed after ours
  } else {
    pending_.erase(it);
  }
  auto parsed = sip::parse(entry.original, framing_of(entry.in.flow.transport), limits_);
  if (!parsed) return;  // it parsed when it arrived: cannot happen
  ++counters_.replied;
  log_->warn("reply: {} {} to {} from {} call-id={}: {}", status, reason, parsed->method, describe(entry.in.flow),
             parsed->value(sip::HeaderId::CallId), why);
  send_local_reply(entry.in.flow, make_reply(*parsed, entry.in.flow.remote, status, reason, why, secret_));
}

void Server::connection_lost(const std::string& key, const char* why) {
  std::vector<std::string> lost;
  // An answered request may still get its final response over a new
  // connection (RFC 3261 18.2.2): only the unanswered ones have failed.
  for (const auto& [branch, r] : pending_)
    if (r.candidate == key && !r.answered && !r.timed_out) lost.push_back(branch);
  for (const auto& branch : lost)
    request_failed(branch, 503, "Service Unavailable", "next hop unreachable: connection to " + key + " lost: " + why);
}

bool Server::waits_on(const std::string& branch, const Address& to) const {
  auto it = branch.empty() ? pending_.end() : pending_.find(branch);
  return it != pending_.end() && !it->second.timed_out && it->second.candidate == connection_key(to, Transport::udp);
}

void Server::read_icmp_errors(Listener& l) {
  uv_os_fd_t fd = -1;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&l.udp), &fd) != 0) return;
  // The kernel hands back the start of the datagram the error is about
  // (at most 576 bytes of ICMP): enough for our Via, which comes first.
  char payload[2048];
  alignas(cmsghdr) char control[512];
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage dst{};
    iovec iov{payload, sizeof payload};
    msghdr msg{};
    msg.msg_name = &dst;
    msg.msg_namelen = sizeof dst;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    auto n = ::recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (n < 0) return;
    const sock_extended_err* ee = nullptr;
    for (auto* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if ((c->cmsg_level == SOL_IP && c->cmsg_type == IP_RECVERR) ||
          (c->cmsg_level == SOL_IPV6 && c->cmsg_type == IPV6_RECVERR))
        ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
    if (!ee || (ee->ee_origin != SO_EE_ORIGIN_ICMP && ee->ee_origin != SO_EE_ORIGIN_ICMP6)) continue;
    // Only "nobody there": a path-MTU or TTL error is no reason to give up on a next hop.
    if (ee->ee_errno != ECONNREFUSED && ee->ee_errno != EHOSTUNREACH && ee->ee_errno != ENETUNREACH) continue;
    auto to = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&dst));
    auto returned = sip::salvage(std::string_view(payload, static_cast<std::size_t>(n)));
    auto branch = top_via_branch(returned);
    if (!waits_on(branch, to)) {
      log_->debug("icmp: {} for a datagram to udp {} that no request waits on", std::strerror(ee->ee_errno),
                  to.to_string());
      continue;
    }
    log_->warn("unreachable: udp {} ({}, ICMP from {}) for {}", to.to_string(), std::strerror(ee->ee_errno),
               Address::from_sockaddr(SO_EE_OFFENDER(ee)).ip(), returned.method);
    request_failed(branch, 503, "Service Unavailable",
                   "next hop unreachable: udp " + to.to_string() + " " + std::strerror(ee->ee_errno));
  }
}

bool Server::note_response(const sip::Message& m, const Source& in) {
  if (m.cseq_method == "CANCEL") return true;  // its own transaction, never remembered
  auto it = pending_.find(m.via.branch);
  if (it == pending_.end()) return true;
  auto from = connection_key(in.flow.remote, in.flow.transport);
  auto& r = it->second;
  if (auto down = down_until_.find(from); down != down_until_.end() && down->second <= Clock::now()) {
    log_->info("upstream {} answers again", from);
    down_until_.erase(down);
  }
  const bool is_invite = m.cseq_method == "INVITE";
  if (r.timed_out) {
    // The phone has our 408: a late final answer is kept from it, except an
    // INVITE's 2xx, which set up a dialog that only the phone can end.
    if (m.status < 200 || (is_invite && m.status < 300)) return true;
    if (is_invite) acknowledge(r.forwarded, m, in.flow);
    ++counters_.absorbed;
    return false;
  }
  if (from != r.candidate) {
    // A late answer from a target this request has left: a final error is
    // acknowledged and kept from the phone, who waits for the new target.
    if (r.tried(from) && m.status >= 300) {
      if (is_invite) acknowledge(r.forwarded, m, in.flow);
      ++counters_.absorbed;
      return false;
    }
    if (m.status >= 200) pending_.erase(it);  // a final answer from elsewhere still ends it
    return true;
  }
  if (m.status < 200) {
    r.answered = true;
    return true;
  }
  if (m.status != 503 || !r.upstream) {
    pending_.erase(it);
    return true;
  }
  // RFC 3263 4.3: a 503 sends the request to the next target; Retry-After says how long to avoid this one.
  auto retry = cfg_.upstream.retry_after;
  for (const auto& h : m.headers)
    if (sip::iequals(h.name, "Retry-After"))
      if (auto seconds = sip::parse_uint<std::uint32_t>(h.value.substr(0, h.value.find_first_of(" ;(")))) {
        retry = std::chrono::seconds(*seconds);
        break;
      }
  auto forwarded = r.forwarded;
  const std::string branch = it->first;  // the entry may move while the request is forwarded again
  mark_down(from, retry, "answered 503 " + std::string(m.reason));
  if (!fail_over(branch)) {
    pending_.erase(branch);
    return true;  // nowhere else to go: the phone gets the 503
  }
  if (is_invite) acknowledge(forwarded, m, in.flow);
  ++counters_.absorbed;
  log_->info("failover: 503 from {} for {} call-id={} answered by trying the next target", from, m.cseq_method,
             m.value(sip::HeaderId::CallId));
  return false;
}

void Server::acknowledge(const std::string& invite_sent, const sip::Message& response, const Flow& to) {
  if (auto sent = sip::parse(invite_sent, framing_of(to.transport), limits_)) send_to_flow(to, make_ack(*sent, response));
}

void Server::check_pending() {
  auto now = Clock::now();
  std::vector<std::string> silent;
  std::erase_if(pending_, [&](const auto& kv) {
    const auto& r = kv.second;
    if (now - r.first_sent > (r.invite ? kInviteMaxAge : kRequestMaxAge)) return true;
    if (r.silent(now, cfg_.upstream.failover_after)) silent.push_back(kv.first);
    return false;
  });
  // RFC 3261 16.7 step 10 / 16.8: a next hop that never answers counts as a 408.
  for (const auto& branch : silent) {
    // An earlier one's failover may have moved this one on already.
    auto it = pending_.find(branch);
    if (it == pending_.end() || !it->second.silent(now, cfg_.upstream.failover_after)) continue;
    request_failed(branch, 408, "Request Timeout",
                   "no answer from the upstream within " + std::to_string(cfg_.upstream.failover_after.count()) + "s");
  }
  if (!drained_) return;
  auto waiting = in_flight();
  if (waiting && now < drain_deadline_) return;
  if (waiting)
    log_->warn("drain: {} transaction{} still pending after {}s; stopping anyway", waiting, waiting == 1 ? "" : "s",
               cfg_.relay.drain_timeout.count());
  auto done = std::move(drained_);
  drained_ = nullptr;
  done();
}

Server::Listener* Server::listener_for(std::uint32_t preferred, Transport t, int family) {
  if (preferred < listeners_.size()) {
    auto& l = *listeners_[preferred];
    if (l.cfg.transport == t && l.bound.family() == family) return &l;
  }
  return listener_for(t, family);
}

Server::Listener* Server::listener_for(Transport t, int family) {
  // A worker's own ports first: what it starts toward others is answered to it.
  for (bool own : {true, false}) {
    Listener* fallback = nullptr;
    for (auto& l : listeners_) {
      if (l->own != own || l->cfg.transport != t) continue;
      if (l->bound.family() == family) return l.get();
      if (!fallback && l->bound.family() == AF_INET6 && l->bound.is_any()) fallback = l.get();  // dual stack
    }
    if (fallback) return fallback;
  }
  return nullptr;
}

std::optional<Address> Server::usable_address(const std::vector<Address>& addresses, Transport t, std::uint16_t port) {
  // getaddrinfo may list ::1 before 127.0.0.1: take the first we can send to.
  for (const auto& a : addresses)
    if (listener_for(t, a.family())) return a.with_port(port);
  return std::nullopt;
}

std::size_t Server::in_flight() const {
  return static_cast<std::size_t>(
      std::count_if(pending_.begin(), pending_.end(), [](const auto& kv) { return !kv.second.timed_out; }));
}

bool Server::upstream_ip(const Address& a) const {
  for (const auto& c : upstream_dns_.candidates)
    if (c.address.same_ip(a)) return true;
  return false;
}

bool Server::from_upstream(const Flow& flow) {
  for (const auto& c : upstream_dns_.candidates)
    if (c.address.port() == flow.remote.port() && c.address.same_ip(flow.remote)) return true;
  return false;
}

bool Server::on_lab_path(const Flow& peer) {
  switch (cfg_.lab.role) {
    case config::LabRole::inner: return from_upstream(peer);
    case config::LabRole::outer: return !from_upstream(peer);
    default: return false;
  }
}

std::string Server::sealed(std::string bytes, Transport transport) {
  auto parsed = sip::parse(bytes, transport == Transport::udp ? sip::Framing::datagram : sip::Framing::stream, limits_);
  if (!parsed) return bytes;  // what we built always parses; never hold a message back for its seal
  char id[17];
  std::snprintf(id, sizeof id, "%s%08llx", seal_prefix_.c_str(), static_cast<unsigned long long>(++seals_ & 0xffffffff));
  return diag::add_seal(*parsed, lab_key_, id);
}

// ---- connections ----------------------------------------------------------

Flow Server::flow_of(const Connection& c) {
  return Flow{c.transport, c.remote, c.id, static_cast<std::uint32_t>(c.listener)};
}

std::string Server::connection_key(const Address& remote, Transport transport) {
  // Several per message: one allocation, not one per piece.
  std::string key;
  key.reserve(8 + INET6_ADDRSTRLEN);
  key += config::to_string(transport);
  key += ':';
  remote.append_to(key);
  return key;
}

Server::Connection* Server::find_connection(const Address& remote, Transport transport) {
  auto it = connection_by_remote_.find(connection_key(remote, transport));
  if (it == connection_by_remote_.end()) return nullptr;
  auto c = connections_.find(it->second);
  if (c == connections_.end() || c->second->closing) return nullptr;
  return c->second.get();
}

Server::Connection* Server::open_connection(const Address& dst, Transport transport, std::string_view tls_name) {
  if (shutting_down_) return nullptr;
  std::unique_ptr<tls::Session> session;
  if (transport == Transport::tls) {
    if (!tls_client_) {
      log_->warn("no new tls connection to {}: no TLS listener configured", dst.to_string());
      return nullptr;
    }
    std::string name = tls_name.empty() ? dst.ip() : std::string(tls_name);
    auto ticket = tls_tickets_.find(connection_key(dst, transport));
    session = tls::Session::connect(tls_client_, name, ticket == tls_tickets_.end() ? nullptr : ticket->second);
    if (!session) return nullptr;
  }
  if (connections_.size() >= cfg_.relay.max_tcp_connections) {
    counters_.hit(Limit::max_tcp_connections);
    log_->warn("no new tcp connection to {}: {} connections open (relay.max_tcp_connections)", dst.to_string(),
               connections_.size());
    return nullptr;
  }
  auto* l = listener_for(transport, dst.family());
  auto owned = std::make_unique<Connection>();
  owned->server = this;
  owned->id = next_connection_id_++;
  owned->listener = l ? l->index : 0;
  owned->transport = transport;
  owned->tls = std::move(session);
  owned->remote = dst;
  uv_tcp_init(loop_, &owned->tcp);
  owned->tcp.data = owned.get();
  uv_timer_init(loop_, &owned->idle);
  owned->idle.data = owned.get();
  owned->open_handles = 2;
  owned->connect_req.data = owned.get();
  auto* c = owned.get();
  connections_.emplace(c->id, std::move(owned));
  connection_by_remote_[connection_key(dst, transport)] = c->id;
  int rc = uv_tcp_connect(&c->connect_req, &c->tcp, dst.sa(), [](uv_connect_t* req, int status) {
    auto* conn = static_cast<Connection*>(req->data);
    auto* self = conn->server;
    if (status == UV_ECANCELED || self->shutting_down_) {
      // Closed under us (shutdown): the listeners are closing, send nothing.
      conn->on_failure.clear();
      conn->queued.clear();
      return;
    }
    if (status < 0) {
      // The queued requests' senders learn it now (503), not after their timers.
      auto failures = std::move(conn->on_failure);
      conn->on_failure.clear();
      conn->queued.clear();
      self->log_->warn("tcp connect to {} failed: {}", conn->remote.to_string(), uv_strerror(status));
      self->counters_.send_failures += failures.size();
      if (!conn->closing) self->close_connection(*conn, "connect failed");
      for (auto& [reply, back] : failures) self->send_local_reply(back, std::move(reply));
      return;
    }
    if (conn->closing) return;
    self->on_connected(*conn);
  });
  if (rc < 0) {
    log_->warn("tcp connect to {} failed: {}", dst.to_string(), uv_strerror(rc));
    close_connection(*c, "connect failed");
    return nullptr;
  }
  // connect() has bound the local port already: observers can name our end now.
  sockaddr_storage local{};
  int len = sizeof local;
  if (uv_tcp_getsockname(&c->tcp, reinterpret_cast<sockaddr*>(&local), &len) == 0)
    c->local = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local));
  touch(*c);
  return c;
}

void Server::on_connected(Connection& c) {
  c.connected = true;
  if (!c.tls) c.on_failure.clear();  // a TLS connection may still fail its handshake
  uv_tcp_nodelay(&c.tcp, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c.tcp), &Server::on_tcp_alloc, &Server::on_tcp_read);
  if (c.tls) write_raw(c, c.tls->take_output());  // the ClientHello
  auto queued = std::move(c.queued);
  c.queued.clear();
  for (auto& q : queued) write(c, std::move(q));
}

void Server::write(Connection& c, std::string bytes) {
  if (!c.tls) return write_raw(c, std::move(bytes));
  if (!c.tls->send(bytes)) {
    ++counters_.send_failures;
    close_connection(c, "TLS write failed");
    return;
  }
  if (auto out = c.tls->take_output(); !out.empty()) write_raw(c, std::move(out));
}

void Server::write_raw(Connection& c, std::string bytes) {
  if (c.closing) return;
  if (uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&c.tcp)) > cfg_.limits.max_connection_buffer) {
    // The peer does not read what we send: drop it rather than buffer without end.
    ++counters_.send_failures;
    limit_hit(Limit::max_connection_buffer, [&] {
      return fmt::format("{} connection with {} closed: over {} bytes queued, the peer does not read "
                         "(limits.max_connection_buffer)",
                         config::to_string(c.transport), c.remote.to_string(), cfg_.limits.max_connection_buffer);
    });
    close_connection(c, "write queue full (peer not reading)");
    return;
  }
  auto* req = new WriteReq;  // freed in the callback
  req->data = std::move(bytes);
  req->req.data = &c;
  auto buf = uv_buf_init(req->data.data(), static_cast<unsigned>(req->data.size()));
  int rc = uv_write(&req->req, reinterpret_cast<uv_stream_t*>(&c.tcp), &buf, 1, [](uv_write_t* r, int status) {
    auto* w = reinterpret_cast<WriteReq*>(r);
    auto* conn = static_cast<Connection*>(r->data);
    if (status < 0 && status != UV_ECANCELED && !conn->closing) {
      ++conn->server->counters_.send_failures;
      conn->server->close_connection(*conn, uv_strerror(status));
    }
    delete w;
  });
  if (rc < 0) {
    delete req;
    ++counters_.send_failures;
    close_connection(c, uv_strerror(rc));
    return;
  }
  touch(c);
}

void Server::touch(Connection& c) {
  auto ms = static_cast<std::uint64_t>(cfg_.relay.tcp_idle_timeout.count()) * 1000;
  uv_timer_start(
      &c.idle,
      [](uv_timer_t* t) {
        auto* conn = static_cast<Connection*>(t->data);
        conn->server->close_connection(*conn, "idle timeout");
      },
      ms, 0);
}

void Server::close_connection(Connection& c, const char* why) {
  if (c.closing) return;
  c.closing = true;
  if (c.counted_for_source) source_limits_.close_connection(c.remote.ip());
  log_->debug("{} connection {} with {} closed: {}", config::to_string(c.transport), c.id, c.remote.to_string(), why);
  auto key = connection_key(c.remote, c.transport);
  if (c.tls && c.tls->ticket()) {
    if (tls_tickets_.size() >= kMaxTlsTickets) tls_tickets_.clear();
    tls_tickets_[key] = c.tls->ticket();
  }
  auto it = connection_by_remote_.find(key);
  if (it != connection_by_remote_.end() && it->second == c.id) connection_by_remote_.erase(it);
  auto on_close = [](uv_handle_t* h) {
    auto* conn = static_cast<Connection*>(h->data);
    if (--conn->open_handles == 0) conn->server->connections_.erase(conn->id);  // memory freed only here
  };
  uv_timer_stop(&c.idle);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.idle), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&c.tcp), on_close);
  // Responses on a stream come back on its connection: what waited on this one never will.
  if (!shutting_down_ && !pending_.empty()) connection_lost(key, why);
}

// ---- diagnostics ----------------------------------------------------------

void Server::observe(diag::Direction dir, const sip::Message& m, const Flow& peer, std::string_view self,
                     std::string_view wire, bool local, const diag::SealCheck* seal) {
  auto transport = config::to_string(peer.transport);
  auto peer_text = peer.remote.to_string();
  diag::Observed e{dir, from_upstream(peer) ? diag::Leg::upstream : diag::Leg::phone, std::chrono::system_clock::now(),
                   transport, peer_text, m, local, self, wire, seal};
  for (auto* o : observers_) o->on_message(e);
}

std::string Server::self_address(const Listener& l, const Address& peer, const Connection* c) {
  if (c && c->local.family() != 0) return c->local.to_string();
  if (!l.bound.is_any()) return l.bound.to_string();
  // A wildcard socket sends from the preferred source address of the route
  // toward the peer; a UDP socket connected to the peer (nothing is sent)
  // names it. Datagrams from the peer almost always came to that address too
  // (IP_PKTINFO would say exactly, but libuv does not expose it), and unlike
  // the advertised address it is one the host really has (not a NAT's).
  auto ip = peer.ip();
  auto it = source_ip_toward_.find(ip);
  if (it == source_ip_toward_.end()) {
    if (source_ip_toward_.size() >= kMaxSourceIps) source_ip_toward_.clear();
    auto source = l.bound.host();  // no route: the wildcard itself says "unknown"
    int fd = ::socket(peer.family(), SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
      sockaddr_storage local{};
      socklen_t len = sizeof local;
      if (::connect(fd, peer.sa(), peer.len()) == 0 && ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0)
        source = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local)).host();
      ::close(fd);
    }
    it = source_ip_toward_.emplace(ip, std::move(source)).first;
  }
  return it->second + ":" + std::to_string(l.bound.port());
}

void Server::snapshot(Snapshot& s) const {
  s.relay = counters_;
  s.relay.limit(Limit::max_bindings) = bindings_.evictions();
  if (challenger_) s.challenges = challenger_->stats();
  for (const auto& [id, c] : connections_)
    if (!c->closing) ++(c->transport == Transport::tls ? s.tls_connections : s.tcp_connections);
  s.bindings = bindings_.size();
}

void Server::send_local_reply(const Flow& to, std::string bytes) {
  send(to, std::move(bytes), nullptr, Shown{nullptr, true});
}

std::string Server::describe(const Flow& f) const { return connection_key(f.remote, f.transport); }

}  // namespace sw::proxy
