#include "proxy/resolver.hpp"

#include <ares.h>

#include <algorithm>
#include <string_view>

namespace sw::proxy::dns {
namespace {

// Bounds, so that one hostile or broken zone cannot make a resolution unbounded.
constexpr std::size_t kMaxJobs = 256;         // resolutions in flight
constexpr std::size_t kMaxSrvQueries = 6;     // SRV names asked for one query
constexpr std::size_t kMaxHosts = 12;         // distinct SRV targets looked up
constexpr std::size_t kMaxCandidates = 32;
constexpr std::size_t kMaxShown = 6;          // records named per trace step
constexpr std::size_t kMaxTrace = 1000;
constexpr int kClassIn = 1, kTypeSrv = 33, kTypeNaptr = 35;

std::string_view naptr_service(Transport t) {
  return t == Transport::udp ? "SIP+D2U" : t == Transport::tcp ? "SIP+D2T" : "SIPS+D2T";
}

// Why a step found nothing: an empty answer is just "none"; a failure says which.
std::string reason(int status) {
  bool empty = status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND;
  return empty ? "none" : "none (" + std::string(ares_strerror(status)) + ")";
}

void lower_ttl(std::optional<std::uint32_t>& least, std::optional<std::uint32_t> ttl) {
  if (ttl) least = least ? std::min(*least, *ttl) : *ttl;
}

}  // namespace

struct Resolver::Job {
  enum class Stage : std::uint8_t { naptr, srv, address };
  Stage stage = Stage::naptr;
  Query query;
  std::function<void(Resolution)> done;
  Plan plan;
  int outstanding = 0;
  std::optional<std::uint32_t> min_ttl;
  std::vector<std::string> steps;  // the trace, joined with " -> "

  std::vector<SrvQuery> srv;
  std::vector<std::vector<SrvRecord>> srv_records;  // per srv entry, in RFC 2782 order
  std::vector<int> srv_status;

  struct Target {
    Transport transport;
    std::string host;
    std::uint16_t port;
  };
  std::vector<Target> targets;
  std::vector<std::string> hosts;  // distinct target hosts, each looked up once
  std::vector<std::vector<Address>> addresses;  // per host, port 0
  std::vector<int> host_status;
};

struct Resolver::Glue {
  // What c-ares hands back to a callback: the job and which answer this is.
  struct Request {
    Resolver* resolver;
    Job* job;
    std::size_t index;
  };

  struct Poll {
    uv_poll_t handle;
    Resolver* resolver;
    int fd;
  };

  static void on_sock_state(void* data, ares_socket_t fd, int readable, int writable) {
    auto* self = static_cast<Resolver*>(data);
    auto it = self->polls_.find(fd);
    if (!readable && !writable) {
      // Called before c-ares closes the fd, so the watcher leaves epoll while the fd is still valid.
      if (it != self->polls_.end()) {
        close_poll(it->second);
        self->polls_.erase(it);
      }
      return;
    }
    uv_poll_t* handle = nullptr;
    if (it != self->polls_.end()) {
      handle = it->second;
    } else {
      auto* p = new Poll{{}, self, fd};
      if (uv_poll_init_socket(self->loop_, &p->handle, fd) != 0) {
        delete p;  // unwatched: c-ares's own timeout ends the query
        return;
      }
      p->handle.data = p;
      handle = &p->handle;
      self->polls_.emplace(fd, handle);
    }
    uv_poll_start(handle, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
  }

  static void close_poll(uv_poll_t* handle) {
    uv_poll_stop(handle);
    uv_close(reinterpret_cast<uv_handle_t*>(handle),
             [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
  }

  static void on_poll(uv_poll_t* handle, int status, int events) {
    auto* p = static_cast<Poll*>(handle->data);
    auto* self = p->resolver;
    // An error on the socket: let c-ares read and write so that it notices.
    ares_socket_t read_fd = status < 0 || (events & UV_READABLE) ? p->fd : ARES_SOCKET_BAD;
    ares_socket_t write_fd = status < 0 || (events & UV_WRITABLE) ? p->fd : ARES_SOCKET_BAD;
    ares_process_fd(self->channel_, read_fd, write_fd);  // may close p: no use after this
    self->arm_timer();
  }

  static void on_timer(uv_timer_t* t) {
    auto* self = static_cast<Resolver*>(t->data);
    ares_process_fd(self->channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    self->arm_timer();
  }

  static void on_flush(uv_timer_t* t) {
    auto* self = static_cast<Resolver*>(t->data);
    auto ready = std::move(self->finished_);
    self->finished_.clear();
    for (auto& [done, resolution] : ready) {
      if (self->closed_) return;  // a callback closed us: the rest are cancelled
      done(std::move(resolution));
    }
  }

  // Frees the request; its job is null when the answer must be ignored (shutting down).
  static Request take(void* arg, int status) {
    auto* r = static_cast<Request*>(arg);
    Request copy = *r;
    delete r;
    if (status == ARES_EDESTRUCTION || copy.resolver->closed_) copy.job = nullptr;
    return copy;
  }

  static void on_naptr(void* arg, int status, int, unsigned char* abuf, int alen) {
    auto req = take(arg, status);
    if (!req.job) return;
    auto& job = *req.job;
    std::vector<NaptrRecord> records;
    ares_naptr_reply* reply = nullptr;
    if (status == ARES_SUCCESS) status = ares_parse_naptr_reply(abuf, alen, &reply);
    for (auto* n = reply; n; n = n->next)
      records.push_back({n->order, n->preference, reinterpret_cast<const char*>(n->flags),
                         reinterpret_cast<const char*>(n->service), reinterpret_cast<const char*>(n->regexp),
                         n->replacement ? n->replacement : ""});
    if (reply) ares_free_data(reply);
    auto usable = usable_naptr(records, job.query.sips, job.query.usable);
    if (usable.size() > kMaxSrvQueries) usable.resize(kMaxSrvQueries);
    std::string step = "NAPTR " + job.query.host + ": ";
    if (!usable.empty()) {
      lower_ttl(job.min_ttl, min_answer_ttl({abuf, static_cast<std::size_t>(alen)}));
      for (std::size_t i = 0; i < usable.size(); ++i)
        step += (i ? ", " : "") + std::string(naptr_service(usable[i].transport));
    } else {
      step += records.empty() ? reason(status) : std::to_string(records.size()) + " records, none usable";
    }
    job.steps.push_back(std::move(step));
    // RFC 3263 4.1: no usable NAPTR records means asking the SRV names ourselves.
    req.resolver->ask_srv(job, usable.empty() ? default_srv_queries(job.query.host, job.query.sips, job.query.usable)
                                              : std::move(usable));
  }

  static void on_srv(void* arg, int status, int, unsigned char* abuf, int alen) {
    auto req = take(arg, status);
    if (!req.job) return;
    auto& job = *req.job;
    ares_srv_reply* reply = nullptr;
    if (status == ARES_SUCCESS) status = ares_parse_srv_reply(abuf, alen, &reply);
    std::vector<SrvRecord> records;
    for (auto* s = reply; s; s = s->next) records.push_back({s->priority, s->weight, s->port, s->host ? s->host : ""});
    if (reply) ares_free_data(reply);
    auto& rng = req.resolver->rng_;
    auto ordered = order_srv(std::move(records), [&rng](std::uint32_t n) {
      return std::uniform_int_distribution<std::uint32_t>(0, n)(rng);
    });
    if (!ordered.empty()) lower_ttl(job.min_ttl, min_answer_ttl({abuf, static_cast<std::size_t>(alen)}));
    job.srv_records[req.index] = std::move(ordered);
    job.srv_status[req.index] = status;
    req.resolver->settle(job);
  }

  static void on_addrinfo(void* arg, int status, int, ares_addrinfo* result) {
    auto req = take(arg, status);
    if (req.job) {
      auto& job = *req.job;
      auto& out = job.addresses[req.index];
      for (auto* n = result ? result->nodes : nullptr; n; n = n->ai_next) {
        if (n->ai_family != AF_INET && n->ai_family != AF_INET6) continue;
        auto a = Address::from_sockaddr(n->ai_addr);
        if (std::find(out.begin(), out.end(), a) != out.end()) continue;  // one per socket type otherwise
        out.push_back(a);
        lower_ttl(job.min_ttl, static_cast<std::uint32_t>(std::max(n->ai_ttl, 0)));
      }
      job.host_status[req.index] = status;
    }
    if (result) ares_freeaddrinfo(result);
    if (req.job) req.resolver->settle(*req.job);
  }
};

Resolver::Resolver(uv_loop_t* loop, Options options)
    : loop_(loop), options_(std::move(options)), timer_(new uv_timer_t), flush_(new uv_timer_t),
      rng_(std::random_device{}()) {
  uv_timer_init(loop_, timer_);
  uv_timer_init(loop_, flush_);
  timer_->data = this;
  flush_->data = this;
}

Resolver::~Resolver() { close(); }

bool Resolver::start(std::string* error) {
  auto fail = [&](const std::string& what, int rc) {
    if (error) *error = what + ": " + ares_strerror(rc);
    return false;
  };
  if (channel_) return true;
  if (closed_) return fail("resolver closed", ARES_EDESTRUCTION);
  if (int rc = ares_library_init(ARES_LIB_INIT_ALL); rc != ARES_SUCCESS) return fail("c-ares init", rc);
  library_ = true;
  ares_options o{};
  o.sock_state_cb = &Glue::on_sock_state;
  o.sock_state_cb_data = this;
  o.timeout = static_cast<int>(options_.timeout.count());
  o.tries = options_.tries;
  ares_channel channel = nullptr;
  if (int rc = ares_init_options(&channel, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
      rc != ARES_SUCCESS)
    return fail("c-ares channel", rc);
  if (!options_.servers.empty()) {
    std::string csv;
    for (const auto& s : options_.servers) csv += (csv.empty() ? "" : ",") + s;
    if (int rc = ares_set_servers_ports_csv(channel, csv.c_str()); rc != ARES_SUCCESS) {
      ares_destroy(channel);
      return fail("DNS servers \"" + csv + "\"", rc);
    }
  }
  channel_ = channel;
  return true;
}

void Resolver::resolve(const Query& q, std::function<void(Resolution)> done) {
  if (closed_) return;
  if (!channel_ || jobs_.size() >= kMaxJobs) {
    Resolution r;
    r.ttl = cache_ttl(std::nullopt, true);
    r.error = !channel_ ? "resolver not started" : "too many DNS lookups in flight";
    deliver(std::move(done), std::move(r));
    return;
  }
  auto owned = std::make_unique<Job>();
  auto& job = *owned;
  job.query = q;
  job.done = std::move(done);
  job.plan = plan(q);
  jobs_.emplace(&job, std::move(owned));
  begin(job);
  arm_timer();
}

void Resolver::begin(Job& job) {
  switch (job.plan.start) {
    case Plan::Start::naptr: return ask_naptr(job);
    case Plan::Start::srv: return ask_srv(job, job.plan.srv);
    case Plan::Start::address:
      job.targets = {{job.plan.address_transport, job.query.host, job.plan.address_port}};
      return ask_addresses(job);
  }
}

void Resolver::ask_naptr(Job& job) {
  job.stage = Job::Stage::naptr;
  ares_query(channel_, job.query.host.c_str(), kClassIn, kTypeNaptr, &Glue::on_naptr, new Glue::Request{this, &job, 0});
}

void Resolver::ask_srv(Job& job, std::vector<SrvQuery> queries) {
  job.stage = Job::Stage::srv;
  job.srv = std::move(queries);
  job.srv_records.assign(job.srv.size(), {});
  job.srv_status.assign(job.srv.size(), ARES_SUCCESS);
  // One extra count held while issuing: an answer c-ares gives synchronously
  // must not move the job on before every question is asked.
  job.outstanding = 1 + static_cast<int>(job.srv.size());
  for (std::size_t i = 0; i < job.srv.size(); ++i)
    ares_query(channel_, job.srv[i].name.c_str(), kClassIn, kTypeSrv, &Glue::on_srv, new Glue::Request{this, &job, i});
  settle(job);
}

void Resolver::ask_addresses(Job& job) {
  job.stage = Job::Stage::address;
  job.hosts.clear();
  for (const auto& t : job.targets)
    if (std::find(job.hosts.begin(), job.hosts.end(), t.host) == job.hosts.end() && job.hosts.size() < kMaxHosts)
      job.hosts.push_back(t.host);
  job.addresses.assign(job.hosts.size(), {});
  job.host_status.assign(job.hosts.size(), ARES_SUCCESS);
  job.outstanding = 1 + static_cast<int>(job.hosts.size());
  ares_addrinfo_hints hints{};
  hints.ai_family = AF_UNSPEC;
  for (std::size_t i = 0; i < job.hosts.size(); ++i)
    ares_getaddrinfo(channel_, job.hosts[i].c_str(), nullptr, &hints, &Glue::on_addrinfo, new Glue::Request{this, &job, i});
  settle(job);
}

void Resolver::settle(Job& job) {
  if (--job.outstanding > 0) return;
  if (job.stage == Job::Stage::address) return finish(job);
  // The SRV answers are in: their targets, in query order then RFC 2782 order.
  std::string step = job.srv.empty() ? "SRV: no usable transport" : "";
  for (std::size_t i = 0; i < job.srv.size(); ++i) {
    step += (i ? "; SRV " : "SRV ") + job.srv[i].name + ": ";
    const auto& records = job.srv_records[i];
    if (records.empty()) step += reason(job.srv_status[i]);
    for (std::size_t k = 0; k < records.size(); ++k) {
      const auto& r = records[k];
      job.targets.push_back({job.srv[i].transport, r.target, r.port});
      if (k < kMaxShown)
        step += (k ? ", " : "") + std::to_string(r.priority) + " " + std::to_string(r.weight) + " " +
                std::to_string(r.port) + " " + r.target;
      else if (k == kMaxShown)
        step += ", ...";
    }
  }
  job.steps.push_back(std::move(step));
  // RFC 3263 4.2: no SRV records at all: the host itself on the default port.
  if (job.targets.empty()) job.targets = {{job.plan.address_transport, job.query.host, job.plan.address_port}};
  ask_addresses(job);
}

void Resolver::finish(Job& job) {
  Resolution r;
  std::string step = "A/AAAA ";
  for (std::size_t i = 0; i < job.hosts.size(); ++i) {
    step += (i ? "; " : "") + job.hosts[i] + ": ";
    const auto& list = job.addresses[i];
    if (list.empty()) step += reason(job.host_status[i]);
    for (std::size_t k = 0; k < list.size() && k <= kMaxShown; ++k)
      step += (k ? ", " : "") + (k < kMaxShown ? list[k].ip() : std::string("..."));
  }
  job.steps.push_back(std::move(step));
  for (const auto& t : job.targets) {
    auto host = std::find(job.hosts.begin(), job.hosts.end(), t.host);
    if (host == job.hosts.end()) continue;  // beyond kMaxHosts
    for (const auto& a : job.addresses[static_cast<std::size_t>(host - job.hosts.begin())]) {
      if (r.candidates.size() >= kMaxCandidates) continue;
      auto address = a.with_port(t.port);
      // Two SRV records naming one host and port give one candidate, tried once.
      bool seen = std::any_of(r.candidates.begin(), r.candidates.end(), [&](const Candidate& c) {
        return c.transport == t.transport && c.address == address;
      });
      if (!seen) r.candidates.push_back({t.transport, t.host, address});
    }
  }
  for (const auto& s : job.steps) r.trace += (r.trace.empty() ? "" : " -> ") + s;
  if (r.trace.size() > kMaxTrace) r.trace = r.trace.substr(0, kMaxTrace - 3) + "...";
  if (r.candidates.empty()) r.error = "no usable address for " + job.query.host + " (" + job.steps.back() + ")";
  r.ttl = cache_ttl(job.min_ttl, r.candidates.empty());
  auto done = std::move(job.done);
  jobs_.erase(&job);
  deliver(std::move(done), std::move(r));
}

void Resolver::deliver(std::function<void(Resolution)> done, Resolution r) {
  // Callbacks run from the loop, never inside c-ares or resolve(): a caller may
  // then resolve again or close() without re-entering c-ares.
  finished_.emplace_back(std::move(done), std::move(r));
  if (finished_.size() == 1) uv_timer_start(flush_, &Glue::on_flush, 0, 0);
}

void Resolver::arm_timer() {
  if (!channel_ || closed_) return;
  timeval tv{};
  if (auto* next = ares_timeout(channel_, nullptr, &tv)) {
    // Rounded up: a timer that fires just before c-ares's deadline would spin.
    auto ms = static_cast<std::uint64_t>(next->tv_sec) * 1000 + static_cast<std::uint64_t>(next->tv_usec + 999) / 1000;
    uv_timer_start(timer_, &Glue::on_timer, ms, 0);
  } else {
    uv_timer_stop(timer_);
  }
}

void Resolver::close() {
  if (closed_) return;
  closed_ = true;
  // Destroying the channel answers every pending request with ARES_EDESTRUCTION
  // (ignored: closed_ is set) and reports each socket closed (its poll goes).
  if (channel_) ares_destroy(channel_);
  channel_ = nullptr;
  for (auto& [fd, handle] : polls_) Glue::close_poll(handle);
  polls_.clear();
  jobs_.clear();
  finished_.clear();
  for (auto* t : {timer_, flush_})
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  if (library_) ares_library_cleanup();
  library_ = false;
}

}  // namespace sw::proxy::dns
