#pragma once
// The relay's counters and their Prometheus text exposition (format 0.0.4).
// Counters are plain integers in fixed arrays owned by the event loop: a
// message costs an increment, never a lookup or an allocation. Rendering is a
// pure function of a snapshot taken when /metrics is asked for.
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "auth/challenger.hpp"
#include "diag/verdict.hpp"
#include "proxy/sip/result.hpp"

namespace sw::proxy {

// Request methods counted by name (RFC 3261 and the common extensions); any
// other method is "other". Method names are case-sensitive (RFC 3261 7.1).
inline constexpr std::array<std::string_view, 15> kCountedMethods{
    "INVITE", "ACK",    "BYE",   "CANCEL", "REGISTER", "OPTIONS", "PRACK", "UPDATE",
    "INFO",   "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH", "other"};
std::size_t method_index(std::string_view method);

// SIP messages of one direction: requests by method, responses by exact code.
struct MessageCounts {
  static constexpr int kLowestStatus = 100, kHighestStatus = 699;
  std::array<std::uint64_t, kCountedMethods.size()> requests{};
  std::array<std::uint64_t, kHighestStatus - kLowestStatus + 1> responses{};

  void request(std::string_view method) { ++requests[method_index(method)]; }
  void response(int status) {
    if (status >= kLowestStatus && status <= kHighestStatus) ++responses[static_cast<std::size_t>(status - kLowestStatus)];
  }
  // A message as it is handed to a socket, counted by its start line.
  void start_line(std::string_view bytes);
};

// Why a received message was neither relayed nor answered.
enum class DropReason : std::uint8_t {
  truncated_datagram,   // over the receive buffer
  malformed,            // unparsable and no usable Via to answer
  response_unroutable,  // a response whose Via does not lead back through us
  unresolvable,         // a response's next hop has no address
  no_listener,          // no listener of the next hop's address family
  dns_backlog,          // too many messages already waiting for DNS
  count_
};
inline constexpr std::array<std::string_view, static_cast<std::size_t>(DropReason::count_)> kDropReasonNames{
    "truncated_datagram", "malformed", "response_unroutable", "unresolvable", "no_listener", "dns_backlog"};

// A bound that was reached. The ones with a config key are named by it, so the
// label (and the log line) says what to raise. A new limit is one entry here and
// one name below.
enum class Limit : std::uint8_t {
  max_message_bytes,           // limits.max_message_bytes: message rejected or dropped
  max_headers,                 // limits.max_headers
  max_line_bytes,              // limits.max_line_bytes
  max_tcp_connections,         // relay.max_tcp_connections: connection refused or not opened
  max_connections_per_source,  // limits.max_connections_per_source: connection refused
  max_requests_per_source,     // limits.max_requests_per_source: request dropped
  max_pending_requests,        // limits.max_pending_requests: relayed without failover or a 408
  max_connection_buffer,       // limits.max_connection_buffer: connection to a peer that does not read closed
  max_bindings,                // relay.max_bindings: a binding evicted
  max_flows,                   // diag.max_flows: a flow evicted without a verdict
  dns_waiting,                 // messages waiting for DNS at once: one dropped
  dns_cache,                   // names in the DNS cache: one not resolved
  count_
};
inline constexpr std::array<std::string_view, static_cast<std::size_t>(Limit::count_)> kLimitNames{
    "limits.max_message_bytes",   "limits.max_headers",           "limits.max_line_bytes",
    "relay.max_tcp_connections",  "limits.max_connections_per_source", "limits.max_requests_per_source",
    "limits.max_pending_requests", "limits.max_connection_buffer", "relay.max_bindings",
    "diag.max_flows",             "dns_waiting_messages",         "dns_cache_names"};

// Why a received message was answered 400 (or 505) instead of relayed: the
// parser's error kind (sw::Errc, without `incomplete`, which is not an error).
inline constexpr std::array<std::string_view, 13> kRejectReasonNames{
    "too_large",        "too_many_headers", "line_too_long", "bad_start_line",     "bad_version",
    "bad_header",       "duplicate_header", "missing_header", "bad_content_length", "bad_value",
    "bad_uri",          "bad_via",          "cseq_mismatch"};
static_assert(kRejectReasonNames.size() == static_cast<std::size_t>(Errc::cseq_mismatch));

// The size limit behind a parse error, if one was.
std::optional<Limit> limit_of(Errc code);

struct Counters {
  std::uint64_t received = 0;  // messages read from sockets, malformed ones included
  std::uint64_t forwarded_requests = 0, forwarded_responses = 0, replied = 0, absorbed = 0;
  std::uint64_t send_failures = 0, tls_failures = 0;
  MessageCounts in, out;  // parsed messages received; messages handed to a socket
  std::array<std::uint64_t, kDropReasonNames.size()> dropped{};
  std::array<std::uint64_t, kRejectReasonNames.size()> rejected{};
  std::array<std::uint64_t, kLimitNames.size()> limits{};

  void drop(DropReason r) { ++dropped[static_cast<std::size_t>(r)]; }
  // A message the parser refused: rejected when answered, else dropped; and
  // the size limit behind it, if one was.
  void malformed(Errc code, bool answered);
  void hit(Limit l) { ++limits[static_cast<std::size_t>(l)]; }
  std::uint64_t& limit(Limit l) { return limits[static_cast<std::size_t>(l)]; }
};

// Verdicts by kind and confidence, counted as the tracker writes them.
struct VerdictCounts {
  static constexpr std::size_t kKinds = static_cast<std::size_t>(diag::VerdictKind::unanswered) + 1;
  std::array<std::array<std::uint64_t, 2>, kKinds> counts{};
  void count(const diag::Verdict& v) {
    ++counts[static_cast<std::size_t>(v.verdict)][static_cast<std::size_t>(v.confidence)];
  }
};

// Everything one scrape shows, gathered from its owners at request time.
struct Snapshot {
  Counters relay;
  auth::Challenger::Stats challenges;  // zeros unless challenge.enabled
  VerdictCounts verdicts;
  std::uint64_t tcp_connections = 0, tls_connections = 0, flows = 0, bindings = 0;
  double uptime_seconds = 0;
};

// Sums another worker's part of a scrape into total (uptime is total's own).
void add(Snapshot& total, const Snapshot& part);

// The Prometheus text exposition format 0.0.4 of a snapshot.
std::string render_prometheus(const Snapshot& s);
// A label value as the format wants it: backslash, double quote and newline escaped.
std::string escape_label_value(std::string_view value);

}  // namespace sw::proxy
