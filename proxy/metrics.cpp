#include "metrics.hpp"

#include <charconv>
#include <initializer_list>
#include <utility>

#include "proxy/version.hpp"

namespace sw::proxy {

std::size_t method_index(std::string_view method) {
  for (std::size_t i = 0; i + 1 < kCountedMethods.size(); ++i)
    if (kCountedMethods[i] == method) return i;
  return kCountedMethods.size() - 1;
}

void MessageCounts::start_line(std::string_view bytes) {
  constexpr std::string_view kStatusPrefix = "SIP/2.0 ";
  if (bytes.starts_with(kStatusPrefix)) {
    int status = 0;
    auto digits = bytes.substr(kStatusPrefix.size(), 3);
    std::from_chars(digits.data(), digits.data() + digits.size(), status);
    response(status);
    return;
  }
  request(bytes.substr(0, bytes.find(' ')));
}

std::optional<Limit> limit_of(Errc code) {
  switch (code) {
    case Errc::too_large: return Limit::max_message_bytes;
    case Errc::too_many_headers: return Limit::max_headers;
    case Errc::line_too_long: return Limit::max_line_bytes;
    default: return std::nullopt;
  }
}

void Counters::malformed(Errc code, bool answered) {
  if (answered) ++rejected[static_cast<std::size_t>(code) - 1];  // the names start after `incomplete`
  else drop(DropReason::malformed);
  if (auto limit = limit_of(code)) hit(*limit);
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

using Label = std::pair<std::string_view, std::string_view>;

// Writes families: a HELP and a TYPE line, then the samples, one per line.
class Exposition {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, std::uint64_t value) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    line(name, labels, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  void sample(std::string_view name, std::initializer_list<Label> labels, double value) {
    char digits[48];
    auto end = std::to_chars(digits, digits + sizeof digits, value, std::chars_format::fixed, 3).ptr;
    line(name, labels, std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  // A family with one unlabelled sample.
  void single(std::string_view name, std::string_view type, std::string_view help, std::uint64_t value) {
    family(name, type, help);
    sample(name, {}, value);
  }
  std::string take() { return std::move(out_); }

 private:
  void line(std::string_view name, std::initializer_list<Label> labels, std::string_view value) {
    out_ += name;
    if (labels.size()) {
      char sep = '{';
      for (const auto& [key, text] : labels) {
        out_ += sep;
        out_ += key;
        out_ += "=\"";
        out_ += escape_label_value(text);
        out_ += '"';
        sep = ',';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
  }
  std::string out_;
};

constexpr std::array<std::string_view, 2> kDirections{"received", "sent"};

}  // namespace

namespace {
template <class T, std::size_t N>
void add_each(std::array<T, N>& total, const std::array<T, N>& part) {
  for (std::size_t i = 0; i < N; ++i) total[i] += part[i];
}
void add_each(MessageCounts& total, const MessageCounts& part) {
  add_each(total.requests, part.requests);
  add_each(total.responses, part.responses);
}
}  // namespace

void add(Snapshot& total, const Snapshot& part) {
  auto& r = total.relay;
  const auto& p = part.relay;
  r.received += p.received;
  r.forwarded_requests += p.forwarded_requests;
  r.forwarded_responses += p.forwarded_responses;
  r.replied += p.replied;
  r.absorbed += p.absorbed;
  r.send_failures += p.send_failures;
  r.tls_failures += p.tls_failures;
  add_each(r.in, p.in);
  add_each(r.out, p.out);
  add_each(r.dropped, p.dropped);
  add_each(r.rejected, p.rejected);
  add_each(r.limits, p.limits);
  auto& c = total.challenges;
  c.challenges += part.challenges.challenges;
  c.accepted += part.challenges.accepted;
  c.failures += part.challenges.failures;
  c.forbidden += part.challenges.forbidden;
  c.source_blocks += part.challenges.source_blocks;
  c.user_blocks += part.challenges.user_blocks;
  for (std::size_t i = 0; i < total.verdicts.counts.size(); ++i)
    add_each(total.verdicts.counts[i], part.verdicts.counts[i]);
  total.tcp_connections += part.tcp_connections;
  total.tls_connections += part.tls_connections;
  total.flows += part.flows;
  total.bindings += part.bindings;
}

std::string render_prometheus(const Snapshot& s) {
  Exposition e;
  const auto& r = s.relay;
  e.family("sipwitness_build_info", "gauge", "The running version (always 1).");
  e.sample("sipwitness_build_info", {{"version", kVersion}}, std::uint64_t{1});
  e.family("sipwitness_uptime_seconds", "gauge", "Seconds since the proxy started.");
  e.sample("sipwitness_uptime_seconds", {}, s.uptime_seconds);

  e.single("sipwitness_messages_received_total", "counter",
           "SIP messages read from the sockets, malformed ones included.", r.received);
  const MessageCounts* directions[2] = {&r.in, &r.out};
  e.family("sipwitness_sip_requests_total", "counter",
           "SIP requests by method: received (parsed) and sent (handed to a socket, ours included).");
  for (std::size_t d = 0; d < 2; ++d)
    for (std::size_t m = 0; m < kCountedMethods.size(); ++m)
      e.sample("sipwitness_sip_requests_total", {{"direction", kDirections[d]}, {"method", kCountedMethods[m]}},
               directions[d]->requests[m]);
  e.family("sipwitness_sip_responses_total", "counter",
           "SIP responses by status code: received and sent (relayed and our own); codes seen so far.");
  for (std::size_t d = 0; d < 2; ++d)
    for (std::size_t i = 0; i < directions[d]->responses.size(); ++i) {
      if (!directions[d]->responses[i]) continue;
      auto code = std::to_string(MessageCounts::kLowestStatus + static_cast<int>(i));
      e.sample("sipwitness_sip_responses_total", {{"direction", kDirections[d]}, {"code", code}},
               directions[d]->responses[i]);
    }
  e.single("sipwitness_forwarded_requests_total", "counter", "Requests relayed.", r.forwarded_requests);
  e.single("sipwitness_forwarded_responses_total", "counter", "Responses relayed.", r.forwarded_responses);
  e.single("sipwitness_local_replies_total", "counter",
           "Requests answered by sipwitness itself (407, 403, 483, 482, 404, 416, 503, probe answers).", r.replied);
  e.single("sipwitness_absorbed_total", "counter",
           "Messages deliberately not relayed: ACKs to our own replies, 503s moved past by failover.", r.absorbed);
  e.family("sipwitness_dropped_total", "counter", "Received messages neither relayed nor answered, by reason.");
  for (std::size_t i = 0; i < kDropReasonNames.size(); ++i)
    e.sample("sipwitness_dropped_total", {{"reason", kDropReasonNames[i]}}, r.dropped[i]);
  e.family("sipwitness_rejected_total", "counter", "Malformed requests answered 400 or 505, by parse error.");
  for (std::size_t i = 0; i < kRejectReasonNames.size(); ++i)
    e.sample("sipwitness_rejected_total", {{"reason", kRejectReasonNames[i]}}, r.rejected[i]);
  e.single("sipwitness_send_failures_total", "counter", "Messages that could not be sent.", r.send_failures);
  e.single("sipwitness_tls_failures_total", "counter", "TLS handshakes or sessions that failed.", r.tls_failures);
  e.family("sipwitness_limit_hits_total", "counter", "Times a bound was reached, by the limit (its config key when it has one).");
  for (std::size_t i = 0; i < kLimitNames.size(); ++i)
    e.sample("sipwitness_limit_hits_total", {{"limit", kLimitNames[i]}}, r.limits[i]);

  const auto& c = s.challenges;
  e.single("sipwitness_challenges_issued_total", "counter", "407 challenges sent by sipwitness (challenge.enabled).",
           c.challenges);
  e.single("sipwitness_challenge_answers_accepted_total", "counter", "Credentials for our realm that verified.",
           c.accepted);
  e.single("sipwitness_challenge_answers_failed_total", "counter",
           "Credentials for our realm that did not verify (wrong password, unknown user, replay).", c.failures);
  e.single("sipwitness_challenge_forbidden_total", "counter", "403 answers of the brute-force guard.", c.forbidden);
  e.family("sipwitness_challenge_blocks_total", "counter", "Blocks started by the brute-force guard, by what was blocked.");
  e.sample("sipwitness_challenge_blocks_total", {{"key", "source"}}, c.source_blocks);
  e.sample("sipwitness_challenge_blocks_total", {{"key", "user"}}, c.user_blocks);

  e.family("sipwitness_verdicts_total", "counter", "Auth verdicts written, by verdict and confidence.");
  for (std::size_t k = 0; k < VerdictCounts::kKinds; ++k)
    for (auto confidence : {diag::Confidence::certain, diag::Confidence::likely})
      e.sample("sipwitness_verdicts_total",
               {{"verdict", diag::to_string(static_cast<diag::VerdictKind>(k))},
                {"confidence", diag::to_string(confidence)}},
               s.verdicts.counts[k][static_cast<std::size_t>(confidence)]);

  e.family("sipwitness_connections", "gauge", "Open stream connections, by transport.");
  e.sample("sipwitness_connections", {{"transport", "tcp"}}, s.tcp_connections);
  e.sample("sipwitness_connections", {{"transport", "tls"}}, s.tls_connections);
  e.single("sipwitness_auth_flows", "gauge", "Auth flows followed by the diagnosis now.", s.flows);
  e.single("sipwitness_bindings", "gauge", "Registration bindings held.", s.bindings);
  return e.take();
}

}  // namespace sw::proxy
