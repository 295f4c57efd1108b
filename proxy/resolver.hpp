#pragma once
// RFC 3263 upstream resolution (NAPTR -> SRV -> A/AAAA) with c-ares, driven by
// the libuv loop: c-ares reports its sockets, one uv_poll_t watches each, and a
// uv_timer_t runs c-ares's retransmissions. The decisions are the pure ones in
// proxy/dns.hpp; this file only asks the questions. No caching here: the server
// caches Resolutions by dns::cache_key.
#include <uv.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "proxy/dns.hpp"

struct ares_channeldata;  // c-ares's channel, kept out of this header

namespace sw::proxy::dns {

class Resolver {
 public:
  struct Options {
    std::vector<std::string> servers;  // "ip", "ip:port" or "[ip6]:port"; empty = the system's resolv.conf
    std::chrono::milliseconds timeout{2000};  // per try, per server
    int tries = 2;
  };

  Resolver(uv_loop_t* loop, Options options);
  ~Resolver();  // close()s if not yet closed
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  // Reads resolv.conf (once) and sets the servers; false with *error on failure.
  bool start(std::string* error);

  // `done` is called exactly once, from the loop and never from inside resolve(),
  // unless close() comes first. q.host must not be an IP literal.
  void resolve(const Query& q, std::function<void(Resolution)> done);

  // Cancels what is pending (no callbacks after this) and closes the handles,
  // so that uv_run can end. May be called from a callback; destroying the
  // Resolver from one may not (the callback loop still holds it).
  void close();

  std::size_t pending() const { return jobs_.size(); }

 private:
  struct Job;
  struct Glue;  // the C callbacks (c-ares and libuv), defined in resolver.cpp

  void begin(Job& job);
  void ask_naptr(Job& job);
  void ask_srv(Job& job, std::vector<SrvQuery> queries);
  void ask_addresses(Job& job);
  void settle(Job& job);  // one answer (or the issuing guard) is in; moves on when all are
  void finish(Job& job);
  void deliver(std::function<void(Resolution)> done, Resolution r);
  void arm_timer();

  uv_loop_t* loop_;
  Options options_;
  ares_channeldata* channel_ = nullptr;
  bool library_ = false;
  bool closed_ = false;
  uv_timer_t* timer_;  // c-ares timeouts; heap-allocated: freed by its close callback
  uv_timer_t* flush_;  // runs the finished callbacks on the next loop turn
  std::unordered_map<int, uv_poll_t*> polls_;  // by c-ares socket
  std::unordered_map<Job*, std::unique_ptr<Job>> jobs_;
  std::vector<std::pair<std::function<void(Resolution)>, Resolution>> finished_;
  std::mt19937 rng_;
};

}  // namespace sw::proxy::dns
