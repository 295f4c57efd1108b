#include "metrics_http.hpp"

#include <microhttpd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

#include "proxy/address.hpp"

namespace sw::proxy {
namespace {

constexpr unsigned kMaxConnections = 16;      // scrapers are few; more is someone else
constexpr unsigned kConnectionTimeoutS = 10;  // an idle or stalled client is closed after this
constexpr const char* kContentType = "text/plain; version=0.0.4; charset=utf-8";

MHD_Result respond(MHD_Connection* connection, unsigned status, std::string_view body,
                   const char* allow = nullptr) {
  auto* response =
      MHD_create_response_from_buffer(body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (!response) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, status == MHD_HTTP_OK ? kContentType : "text/plain");
  if (allow) MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, allow);
  auto queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

MHD_Result on_request(void* cls, MHD_Connection* connection, const char* url, const char* method, const char*,
                      const char*, std::size_t*, void**) {
  if (std::strcmp(url, "/metrics") != 0) return respond(connection, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
  if (std::strcmp(method, MHD_HTTP_METHOD_GET) != 0 && std::strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return respond(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "GET or HEAD only\n", "GET, HEAD");
  // MHD leaves out the body of a HEAD answer itself.
  return respond(connection, MHD_HTTP_OK, (*static_cast<MetricsListener::Render*>(cls))());
}

// libmicrohttpd's own error messages, into our log.
void on_mhd_log(void* cls, const char* format, va_list args) {
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  std::size_t n = std::strlen(text);
  while (n && (text[n - 1] == '\n' || text[n - 1] == '\r')) text[--n] = '\0';
  static_cast<spdlog::logger*>(cls)->warn("metrics: {}", text);
}

}  // namespace

MetricsListener::MetricsListener(uv_loop_t* loop, std::shared_ptr<spdlog::logger> log, Render render)
    : loop_(loop), log_(std::move(log)), render_(std::move(render)) {}

MetricsListener::~MetricsListener() {
  if (daemon_) MHD_stop_daemon(daemon_);
}

bool MetricsListener::start(const std::string& host, std::uint16_t port) {
  auto address = Address::from_ip(host, port);
  if (!address) {
    log_->error("metrics.listen: {} is not an IP address", host);
    return false;
  }
  // No internal thread: the daemon's epoll descriptor joins our loop.
  unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (address->family() == AF_INET6 ? MHD_USE_IPv6 : 0);
  // The logger comes first, so that what the other options find is logged through it.
  daemon_ = MHD_start_daemon(flags, port, nullptr, nullptr, &on_request, &render_,  //
                             MHD_OPTION_EXTERNAL_LOGGER, &on_mhd_log, log_.get(),   //
                             MHD_OPTION_SOCK_ADDR, address->sa(),                   //
                             MHD_OPTION_CONNECTION_LIMIT, kMaxConnections,          //
                             MHD_OPTION_CONNECTION_TIMEOUT, kConnectionTimeoutS,    //
                             MHD_OPTION_END);
  if (!daemon_) {
    log_->error("metrics.listen: cannot listen on http {}: {}", address->to_string(), std::strerror(errno));
    return false;
  }
  uv_poll_init(loop_, &poll_, MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD)->epoll_fd);
  poll_.data = this;
  uv_poll_start(&poll_, UV_READABLE, [](uv_poll_t* p, int, int) { static_cast<MetricsListener*>(p->data)->run(); });
  uv_timer_init(loop_, &timer_);
  timer_.data = this;
  log_->info("metrics: listening http {}", address->to_string());
  return true;
}

void MetricsListener::run() {
  // At the connection limit the daemon takes its listening socket out of its
  // epoll set, and puts it back only at the start of a run once below it: a
  // run that closed connections needs one more, else nothing would wake it.
  auto connections = [this] {
    return MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_CURRENT_CONNECTIONS)->num_connections;
  };
  const bool was_full = connections() >= kMaxConnections;
  MHD_run(daemon_);
  if (was_full && connections() < kMaxConnections) MHD_run(daemon_);
  MHD_UNSIGNED_LONG_LONG ms = 0;
  if (MHD_get_timeout(daemon_, &ms) == MHD_YES)
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<MetricsListener*>(t->data)->run(); }, ms, 0);
  else uv_timer_stop(&timer_);
}

void MetricsListener::close() {
  if (!daemon_) return;
  // The poll handle lets go of the epoll descriptor at once; only then may the daemon close it.
  uv_close(reinterpret_cast<uv_handle_t*>(&poll_), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), nullptr);
  MHD_stop_daemon(daemon_);
  daemon_ = nullptr;
}

}  // namespace sw::proxy
