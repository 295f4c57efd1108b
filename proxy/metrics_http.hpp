#pragma once
// The optional Prometheus listener (metrics.listen): GET /metrics, served by
// GNU libmicrohttpd driven from the proxy's own libuv loop. It has no thread
// of its own, so the counters it renders are read where they are written.
#include <spdlog/logger.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

struct MHD_Daemon;

namespace sw::proxy {

class MetricsListener {
 public:
  // render: the exposition text, built on the loop when a scrape arrives.
  using Render = std::function<std::string()>;
  MetricsListener(uv_loop_t* loop, std::shared_ptr<spdlog::logger> log, Render render);
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;
  ~MetricsListener();

  // Binds host (an IP) and port and logs
  // "metrics: listening http ADDRESS"; false after logging why.
  bool start(const std::string& host, std::uint16_t port);
  // Stops serving; uv_run returns once the handles' close callbacks ran.
  void close();

 private:
  // Lets the daemon work (accept, read, answer, time out), then asks it when
  // it wants to run again.
  void run();

  uv_loop_t* loop_;
  std::shared_ptr<spdlog::logger> log_;
  Render render_;
  MHD_Daemon* daemon_ = nullptr;
  uv_poll_t poll_{};    // the daemon's epoll descriptor: readable when a socket of its is
  uv_timer_t timer_{};  // the daemon's own timeouts (idle connections, pending work)
};

}  // namespace sw::proxy
