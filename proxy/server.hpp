#pragma once
// The event loop side: listeners, connections, resolution and sends. Routing and
// message edits are decided by the pure modules (router, forward, reply).
#include <spdlog/logger.h>
#include <uv.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "auth/challenger.hpp"
#include "config/config.hpp"
#include "diag/observer.hpp"
#include "diag/seal.hpp"
#include "proxy/bindings.hpp"
#include "proxy/limits.hpp"
#include "proxy/metrics.hpp"
#include "proxy/resolver.hpp"
#include "proxy/router.hpp"
#include "proxy/tls.hpp"

namespace sw::proxy {

// Which of the config's workers a server is. Workers after the first bind
// the addresses the first one's listeners got (shared, in config order).
struct WorkerPlace {
  std::size_t index = 0;
  std::size_t count = 1;
  std::vector<Address> shared;
};

class Server {
 public:
  // users: the credential store for sipwitness's own challenges (challenge.enabled).
  // lab_key: the shared secret of lab.key_file, when lab.role is set.
  Server(uv_loop_t* loop, config::Config cfg, std::shared_ptr<spdlog::logger> log,
         std::vector<diag::Observer*> observers, std::shared_ptr<const auth::CredentialStore> users = nullptr,
         std::string lab_key = {}, WorkerPlace place = {});
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server();

  // Binds every listener and logs "listening <transport> <address>"; false (after
  // logging why) when one cannot be bound.
  bool start();
  // After start: the configured listeners' bound addresses, in config order.
  std::vector<Address> listen_addresses() const;
  // After start: this worker's own UDP ports as written in Via and Record-Route.
  const std::vector<LocalEndpoint>& own_endpoints() const { return own_endpoints_; }
  // The other workers' own ports: a Route or Via naming one is ours too.
  void also_ours(const std::vector<LocalEndpoint>& endpoints) { ours_.insert(ours_.end(), endpoints.begin(), endpoints.end()); }
  // SIGTERM: stops accepting connections and new requests (503), lets the
  // transactions in flight finish, then calls done (at the latest after
  // relay.drain_timeout). A second call does not wait.
  void drain(std::function<void()> done);
  // Closes every handle; uv_run then returns once their close callbacks ran.
  void shutdown();
  // The relay's part of a metrics scrape: counters, connections, bindings, challenges.
  void snapshot(Snapshot& s) const;
  // SIGHUP: new users for the challenger; calls in progress are not disturbed.
  void reload_users(std::shared_ptr<const auth::CredentialStore> users);
  // SIGHUP: reads the TLS certificates, keys and CA files again. New connections
  // use them; open ones keep theirs. A file that fails to load keeps the running
  // context (false, after logging why).
  bool reload_tls();

 private:
  struct Listener;
  struct Connection;
  // Where a message arrived: the peer's flow and the listener that took it.
  struct Source {
    Flow flow;
    std::size_t listener = 0;
  };
  using FailureReply = std::function<std::pair<std::string, Flow>()>;
  // What the observers are shown when bytes are handed to a socket: the relayed
  // message they carry, or a reply of ours (parsed from the bytes). Neither: not
  // shown (a 400 to input that could not be parsed).
  struct Shown {
    const sip::Message* relayed = nullptr;
    bool own_reply = false;
  };

  // Start: binding listeners (shared: in the workers' SO_REUSEPORT group) and
  // the endpoints they are advertised as (every local address of a wildcard into ours).
  int open_udp(Listener& l, const Address& addr, bool shared);
  int open_tcp(Listener& l, const Address& addr);
  static void advertise(Listener& l, std::vector<LocalEndpoint>& ours);

  // Receive path.
  int start_reader(Listener& l);
  static void on_udp_readable(uv_poll_t* handle, int status, int events);
  void read_datagrams(Listener& l);
  static void on_tcp_connection(uv_stream_t* server, int status);
  static void on_tcp_alloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void on_tcp_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  void drain_stream(Connection& conn);
  void handle_bytes(std::string_view bytes, const Source& in, sip::Framing framing);
  // A message that waited for DNS, handled again without being observed again.
  void replay(std::string_view bytes, const Source& in, sip::Framing framing);
  // Lab mode: checks the seal of a message from the lab path, strips it, and
  // answers a probe here instead of relaying it.
  void handle_lab_arrival(const sip::Message& m, const Source& in, sip::Framing framing);
  void handle_message(const sip::Message& m, const Source& in, std::string_view wire, const diag::SealCheck* seal);
  void answer_probe(const sip::Message& m, const Source& in, const diag::SealCheck& seal);
  void handle_request(const sip::Message& m, const Source& in);
  void handle_response(const sip::Message& m, const Source& in);
  void reject_malformed(std::string_view bytes, const Source& in, const Error& error);

  // Send path.
  void forward_request(const sip::Message& m, const Source& in, const RequestDecision& d,
                       const sip::Header* own_credentials = nullptr);
  // sipwitness's own 407: true when the request was answered here.
  bool answer_challenge(const sip::Message& m, const Source& in, const sip::Header** own_credentials);
  void send_reply(const sip::Message& m, const Source& in, int status, const char* reason, const char* detail,
                  std::string_view headers = {});
  // Sends bytes along a flow (its listener and connection when known); on
  // failure (now, or when a new TCP connection cannot be made) the failure
  // reply is built and sent back. Nothing is sent once shutdown began. The
  // observers see the message once its socket is chosen, so they learn our
  // end of it (a new TCP connection's port).
  // tls_name: the name a new TLS connection checks the peer's certificate
  // against (its SNI too); "" = the peer's IP address.
  // False when it failed at once (after the failure reply, if any).
  bool send(const Flow& to, std::string bytes, const FailureReply& on_failure, Shown shown,
            std::string_view tls_name = {});
  // UDP: hands one datagram to the socket now (behind what libuv queued), -errno on failure.
  int send_datagram(Listener& l, std::string bytes, const Address& dst);
  // Datagrams produced while reading a burst leave together, one sendmmsg per
  // socket at the end of the burst: a syscall each, and the peer woken once.
  void flush_batch(Listener& l);
  void flush_all_batches();
  // A send that failed: counted and logged.
  void send_failed(Transport transport, const Address& to, const char* why);
  void send_to_flow(const Flow& flow, std::string bytes);
  // Resolves host (IP literals at once). On a miss the message is copied and
  // replayed once the answer is cached; returns nullptr meanwhile.
  const std::vector<Address>* resolve(const std::string& host, std::string_view replay_bytes, const Source& in,
                                      sip::Framing framing);
  // Keeps a copy of a message to replay once a DNS answer is in (bounded).
  void wait_for_dns(std::vector<std::function<void()>>& waiters, std::string_view bytes, const Source& in,
                    sip::Framing framing, std::string_view name);

  // The upstream by RFC 3263: its candidates in order (nullptr while DNS is
  // asked the first time; the message is replayed then).
  const std::vector<dns::Candidate>* upstream_candidates(std::string_view replay_bytes, const Source& in,
                                                         sip::Framing framing);
  void resolve_upstream();
  // The candidate for a request: where its earlier copies went, else the first
  // one neither down nor tried for it.
  const dns::Candidate* choose_upstream(const std::vector<dns::Candidate>& candidates, const std::string& branch);
  bool has_alternative(const std::vector<dns::Candidate>& candidates, const std::string& chosen,
                       const std::string& branch);
  bool usable(const dns::Candidate& c) { return listener_for(c.transport, c.address.family()) != nullptr; }
  void mark_down(const std::string& key, std::chrono::seconds how_long, const std::string& why);
  bool is_down(const std::string& key, Clock::time_point now) const;
  // Requests in flight: each forwarded request (not ACK or CANCEL) is
  // remembered by our branch until its final response, so that a next hop
  // that fails (silence, an ICMP error, a lost connection, a 503) is answered
  // promptly, or the request moves to the next upstream target; and so that
  // SIGTERM can wait for them. False when not remembered (limits.max_pending_requests).
  bool remember_request(const std::string& branch, const std::string& candidate, bool upstream, const sip::Message& m,
                        const Source& in, const sip::Header* own_credentials, const std::string& sent);
  // The next upstream target for a remembered request: true when it was sent there.
  bool fail_over(const std::string& branch);
  // The next hop of a remembered request failed: the next upstream target, else
  // status (503, 408) to whoever sent it. The entry is gone afterwards.
  void request_failed(const std::string& branch, int status, const char* reason, const std::string& why);
  // Every remembered request sent on a connection that is gone.
  void connection_lost(const std::string& key, const char* why);
  // ICMP errors for datagrams a UDP listener sent (IP_RECVERR): the request
  // they carried has failed.
  void read_icmp_errors(Listener& l);
  // Whether the remembered request with this branch still waits on udp `to`.
  bool waits_on(const std::string& branch, const Address& to) const;
  // A response to a remembered request: false when it is absorbed here (a 503
  // answered by failing over, or a late answer from a target left).
  bool note_response(const sip::Message& m, const Source& in);
  // The ACK for a non-2xx final response to an INVITE we sent (invite_sent: its bytes).
  void acknowledge(const std::string& invite_sent, const sip::Message& response, const Flow& to);
  // Every 200 ms: silent upstream targets, aged entries, the drain's end.
  void check_pending();
  // Remembered requests still waiting for an answer (not those we answered 408).
  std::size_t in_flight() const;
  Listener* listener_for(Transport t, int family);
  // The preferred listener (a flow's) when it fits the transport and family, else as above.
  Listener* listener_for(std::uint32_t preferred, Transport t, int family);
  std::optional<Address> usable_address(const std::vector<Address>& addresses, Transport t, std::uint16_t port);
  bool from_upstream(const Flow& flow);
  // The upstream's address whatever the port (a connection it opened itself).
  bool upstream_ip(const Address& a) const;
  // Lab mode: whether a peer is across the device under test (inner: the
  // upstream side; outer: the phones' side). Seals go on and come off there.
  bool on_lab_path(const Flow& peer);
  std::string sealed(std::string bytes, Transport transport);

  // The name to check a next hop's TLS certificate against: the upstream's
  // configured server_name or domain (RFC 5922), else the target's host.
  std::string tls_name_for(const Target& target) const;
  // Loads every TLS context (listeners and the client side); false after logging.
  bool load_tls(bool reloading);

  // Connections (TCP, and TLS over TCP).
  Connection* open_connection(const Address& dst, Transport transport, std::string_view tls_name);
  Connection* find_connection(const Address& remote, Transport transport);
  static std::string connection_key(const Address& remote, Transport transport);
  static Flow flow_of(const Connection& c);
  // Plaintext out: through the TLS session when there is one.
  void write(Connection& conn, std::string bytes);
  void write_raw(Connection& conn, std::string bytes);
  // A TLS connection's received bytes: decrypts into conn.inbuf; false when the
  // connection was closed (handshake or record failure).
  bool receive_tls(Connection& conn, std::string_view ciphertext);
  void on_connected(Connection& conn);
  void close_connection(Connection& conn, const char* why);
  void touch(Connection& conn);

  // Counts a limit hit, and logs it (log_limit) when it is the first in its
  // interval (detail() builds the line only then); the others are summed up every 10 s.
  template <class Detail>
  void limit_hit(Limit limit, const Detail& detail);
  template <class Detail>
  void log_limit(Limit limit, const Detail& detail);

  void observe(diag::Direction dir, const sip::Message& m, const Flow& peer, std::string_view self,
               std::string_view wire, bool local = false, const diag::SealCheck* seal = nullptr);
  // "ip:port" of our end of a message with peer: the TCP connection's own
  // address, else the listener's (see server.cpp for wildcard listeners).
  std::string self_address(const Listener& l, const Address& peer, const Connection* c);
  // Sends a response sipwitness generated, and shows it to the observers.
  void send_local_reply(const Flow& to, std::string bytes);
  std::string describe(const Flow& f) const;
  // "worker 1: " in front of a line about this worker alone, when there are several.
  std::string worker_label() const {
    return place_.count > 1 ? "worker " + std::to_string(place_.index) + ": " : std::string();
  }

  uv_loop_t* loop_;
  config::Config cfg_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<diag::Observer*> observers_;
  bool observers_want_self_ = false;
  sip::ParseLimits limits_;
  std::string secret_;  // per-process, for our To tags
  WorkerPlace place_;
  std::vector<std::unique_ptr<Listener>> listeners_;  // the configured ones (config order), then own ports
  std::vector<LocalEndpoint> ours_;
  std::vector<LocalEndpoint> own_endpoints_;
  Target upstream_;
  BindingTable bindings_;
  std::unique_ptr<auth::Challenger> challenger_;
  std::string lab_key_;      // "" = not in lab mode
  std::string seal_prefix_;  // random per process, so seal ids of two instances never collide
  std::uint64_t seals_ = 0;
  std::unordered_map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::unordered_map<std::string, std::uint64_t> connection_by_remote_;
  std::uint64_t next_connection_id_ = 1;
  struct DnsEntry {
    std::vector<Address> addresses;
    Clock::time_point expires;
    bool pending = false;
    std::vector<std::function<void()>> waiters;
  };
  std::unordered_map<std::string, DnsEntry> dns_;
  std::unique_ptr<dns::Resolver> resolver_;
  struct UpstreamDns {
    std::vector<dns::Candidate> candidates;  // the last good answer (or the IP literal)
    Clock::time_point expires{};
    bool pending = false;
    std::string trace;
    std::vector<std::function<void()>> waiters;
  };
  UpstreamDns upstream_dns_;
  struct PendingRequest {
    std::string candidate;            // connection_key of where it went last
    std::vector<std::string> earlier;  // where it went before (failover), usually none
    bool tried(std::string_view key) const {
      return key == candidate || std::find(earlier.begin(), earlier.end(), key) != earlier.end();
    }
    Clock::time_point first_sent;
    Clock::time_point sent;
    bool upstream = false;  // toward the upstream: silence and 503 move it on (failover)
    bool answered = false;  // a provisional response came: the next hop is alive
    bool timed_out = false;  // we answered 408: a late final answer is kept from the phone (but an INVITE's 2xx)
    bool silent(Clock::time_point now, Clock::duration after) const {
      return upstream && !answered && !timed_out && now - sent >= after;
    }
    bool invite = false;
    std::string original;   // as received, to forward again or answer
    std::string forwarded;  // INVITE as sent last: Request-URI and Route for the ACK of a 503
    Source in;
    std::optional<std::size_t> own_credentials;  // index of our Proxy-Authorization in the headers
  };
  // By our branch; looked up by a response's branch without copying it.
  struct BranchHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, PendingRequest, BranchHash, std::equal_to<>> pending_;
  std::unordered_map<std::string, Clock::time_point> down_until_;  // by connection_key
  uv_timer_t pending_timer_{};
  std::function<void()> drained_;  // set while draining (SIGTERM)
  Clock::time_point drain_deadline_{};
  std::vector<Address> literal_;  // resolve()'s answer for an IP literal or a refused name
  std::size_t replays_pending_ = 0;
  // Wildcard listeners: the local IP the kernel uses toward a peer IP (cached, bounded).
  std::unordered_map<std::string, std::string> source_ip_toward_;
  uv_timer_t housekeeping_{};
  uv_check_t flush_check_{};       // after each loop iteration's I/O: batched datagrams leave
  bool reading_datagram_ = false;  // inside read_datagrams: sends may wait for the burst's end
  struct RecvSlots;
  std::unique_ptr<RecvSlots> recv_slots_;
  std::vector<char> tls_buffer_;  // ciphertext of one read, before decryption
  std::vector<std::shared_ptr<tls::Context>> listen_tls_;  // per cfg_.listen index; null unless tls
  std::shared_ptr<tls::Context> tls_client_;
  // Resumption tickets per peer (transport+address), bounded.
  std::unordered_map<std::string, tls::SessionTicket> tls_tickets_;
  bool shutting_down_ = false;
  Counters counters_;
  LimitReport limit_report_;
  SourceLimits source_limits_;
};

}  // namespace sw::proxy
