#include "probe.hpp"

#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>

#include <nlohmann/json.hpp>

#include "auth/digest.hpp"
#include "auth/mac.hpp"
#include "diag/seal.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/sip/uri.hpp"
#include "proxy/version.hpp"

namespace sw::proxy {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kProbeUser = "probe";
constexpr std::string_view kProbeRealm = "sipwitness-probe";
constexpr std::string_view kSealField = diag::kSealHeader;
constexpr std::string_view kNoAnswer = "(no answer: dropped by the device?)";
constexpr std::string_view kNotRecognised = "(not recognised: answered ";
constexpr milliseconds kT1{500};   // RFC 3261 17.1.1.1
constexpr milliseconds kT2{4000};  // non-INVITE retransmissions stop doubling here (17.1.2.2)

ProbeTokens random_tokens() {
  ProbeTokens t;
  t.branch = std::string(sip::kMagicCookie) + "swp" + auth::random_hex(8);
  t.call_id = auth::random_hex(8);
  t.from_tag = auth::random_hex(4);
  t.nonce = auth::random_hex(16);
  auto session = auth::random_hex(4);
  std::from_chars(session.data(), session.data() + session.size(), t.sdp_session, 16);
  return t;
}

std::string_view call_id_local(std::string_view call_id) { return call_id.substr(0, call_id.find('@')); }

std::string sdp_offer(const ProbeEndpoints& ep, std::uint64_t session) {
  const auto ip = ep.local.ip();
  const std::string net = ep.local.family() == AF_INET6 ? "IN IP6 " : "IN IP4 ";
  const auto id = std::to_string(session);
  // Every line a media ALG rewrites (RFC 4566 o=/c=/m=, RFC 3605 a=rtcp), with our address.
  return "v=0\r\n"
         "o=probe " + id + " " + id + " " + net + ip + "\r\n"
         "s=sipwitness probe\r\n"
         "c=" + net + ip + "\r\n"
         "t=0 0\r\n"
         "m=audio " + std::to_string(ep.media_port) + " RTP/AVP 0 8 101\r\n"
         "a=rtcp:" + std::to_string(ep.media_port + 1) + " " + net + ip + "\r\n"
         "a=rtpmap:0 PCMU/8000\r\n"
         "a=rtpmap:8 PCMA/8000\r\n"
         "a=rtpmap:101 telephone-event/8000\r\n"
         "a=sendrecv\r\n";
}

std::string authorization(std::string_view method, std::string_view uri, std::string_view nonce) {
  // A well-formed answer to a challenge nobody sent: the ALG sees ordinary
  // credentials, and the far side only compares what arrived with the seal.
  auto ha1 = auth::compute_ha1(auth::Algorithm::md5, kProbeUser, kProbeRealm, kProbeUser);
  auth::DigestInput in;
  in.algorithm = auth::Algorithm::md5;
  in.ha1 = ha1;
  in.nonce = nonce;
  in.method = method;
  in.uri = uri;
  auto response = auth::compute_response(in);
  return "Digest username=\"" + std::string(kProbeUser) + "\", realm=\"" + std::string(kProbeRealm) + "\", nonce=\"" +
         std::string(nonce) + "\", uri=\"" + std::string(uri) + "\", response=\"" + response + "\", algorithm=MD5";
}

bool is_seal_report(const sip::Message& m) { return sip::iequals(sip::media_type(m), diag::kSealReportType); }

// Findings for one direction from a seal check (the far side's or ours).
void add_check(const diag::SealCheck& check, ProbeFinding base, std::vector<ProbeFinding>& out) {
  auto add = [&](std::string field, std::string sent, std::string arrived) {
    auto f = base;
    f.field = std::move(field);
    f.sent = std::move(sent);
    f.arrived = std::move(arrived);
    out.push_back(std::move(f));
  };
  switch (check.status) {
    case diag::SealCheck::Status::intact: return;
    case diag::SealCheck::Status::absent: add(std::string(kSealField), "(present)", "(absent)"); return;
    case diag::SealCheck::Status::invalid:
      add(std::string(kSealField), "(present)", "invalid: " + (check.detail.empty() ? std::string("?") : check.detail));
      return;
    case diag::SealCheck::Status::rewritten:
      for (const auto& c : check.changes)
        add(c.label.empty() ? diag::field_label(c.name) : c.label, c.sent, c.arrived);
      return;
  }
}

std::string shown(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string fields_phrase(std::size_t n, bool with_noun) {
  if (!with_noun) return std::to_string(n);
  return std::to_string(n) + (n == 1 ? " field" : " fields");
}

// "3 fields rewritten on the way there, 1 on the way back; seal stripped on the way back"
std::string message_summary(const ProbeMessageResult& m) {
  std::size_t there = 0, back = 0;
  std::vector<std::string> seal;
  for (const auto& f : m.findings) {
    const auto way = f.direction == ProbeDirection::there ? "on the way there" : "on the way back";
    if (f.field == kSealField) {
      auto what = f.arrived == "(absent)"          ? "seal stripped "
                  : f.arrived.starts_with("invalid") ? "seal invalid "
                                                     : "seal not recognised ";
      seal.push_back(what + std::string(way));
    } else {
      ++(f.direction == ProbeDirection::there ? there : back);
    }
  }
  std::string out;
  if (there && back)
    out = fields_phrase(there, true) + " rewritten on the way there, " + fields_phrase(back, false) + " on the way back";
  else if (there)
    out = fields_phrase(there, true) + " rewritten on the way there";
  else if (back)
    out = fields_phrase(back, true) + " rewritten on the way back";
  for (const auto& s : seal) out += (out.empty() ? "" : "; ") + s;
  return out.empty() ? "nothing rewritten" : out;
}

// ---- sockets ----------------------------------------------------------------

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }

 private:
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd_;
};

// Waits for events on fd until deadline; the revents, or 0 at the deadline.
short wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) left = 0;
    pollfd p{fd, events, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::min<long long>(left + 1, 60'000)));
    if (rc > 0) return p.revents;
    if (rc < 0 && errno != EINTR) return POLLERR;
    if (rc == 0 && Clock::now() >= deadline) return 0;
  }
}

std::string errno_text(int e) { return std::strerror(e); }

struct Opened {
  Fd fd;
  Address local;
  std::string error;
};

// A non-blocking socket connected to target (a TCP connect bounded by deadline),
// and the local address the kernel gave it.
Opened open_socket(Transport transport, const Address& target, const std::optional<Address>& bind,
                   Clock::time_point deadline) {
  Opened o;
  const int type = transport == Transport::udp ? SOCK_DGRAM : SOCK_STREAM;
  o.fd = Fd(::socket(target.family(), type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (o.fd.get() < 0) {
    o.error = "cannot open a socket: " + errno_text(errno);
    return o;
  }
  if (transport == Transport::tcp) {
    // Each request is written whole once its predecessor is answered: Nagle would
    // only hold the one after the ACK back for a delayed ACK of the peer.
    int on = 1;
    ::setsockopt(o.fd.get(), IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  if (bind && ::bind(o.fd.get(), bind->sa(), bind->len()) != 0) {
    o.error = "cannot bind to " + bind->ip() + ": " + errno_text(errno);
    return o;
  }
  if (::connect(o.fd.get(), target.sa(), target.len()) != 0) {
    if (errno != EINPROGRESS) {
      o.error = "cannot connect: " + errno_text(errno);
      return o;
    }
    auto ready = wait_for(o.fd.get(), POLLOUT, deadline);
    if (!ready) {
      o.error = "cannot connect: timed out";
      return o;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(o.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
      o.error = "cannot connect: " + errno_text(err);
      return o;
    }
  }
  sockaddr_storage local{};
  socklen_t len = sizeof local;
  if (::getsockname(o.fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    o.error = "getsockname: " + errno_text(errno);
    return o;
  }
  o.local = Address::from_sockaddr(reinterpret_cast<sockaddr*>(&local));
  return o;
}

// What a transaction ended with: the final response's bytes, or why none came.
struct Exchange {
  std::optional<std::string> response;
  std::string note;
  bool connection_lost = false;  // TCP: nothing more can be sent
};

// ECONNREFUSED on a connected UDP socket is the ICMP port unreachable of an earlier datagram.
std::string udp_error(int e) { return e == ECONNREFUSED ? "port unreachable" : errno_text(e); }

// RFC 3261 17.1.1.2 / 17.1.2.2: retransmit at T1, doubling (capped at T2 for
// non-INVITE), until a final response or the timeout. A provisional response
// stops an INVITE's retransmissions.
Exchange udp_transaction(int fd, const std::string& bytes, const sip::Message& request, milliseconds timeout,
                         std::string& buffer) {
  const bool invite = request.method == "INVITE";
  auto now = Clock::now();
  const auto deadline = now + timeout;
  auto interval = kT1;
  auto next = now + interval;
  bool retransmit = true;
  if (::send(fd, bytes.data(), bytes.size(), 0) < 0) return {std::nullopt, udp_error(errno)};
  for (;;) {
    auto ready = wait_for(fd, POLLIN, retransmit ? std::min(next, deadline) : deadline);
    if (ready) {
      for (;;) {
        auto n = ::recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          if (errno == EINTR) continue;
          return {std::nullopt, udp_error(errno)};
        }
        std::string_view datagram(buffer.data(), static_cast<std::size_t>(n));
        auto m = sip::parse(datagram, sip::Framing::datagram);
        if (!m || m->is_request || !answers(*m, request)) continue;  // stale answers to earlier requests, strays
        if (m->status >= 200) return {std::string(datagram), {}};
        if (invite) retransmit = false;
      }
    }
    now = Clock::now();
    if (now >= deadline) return {std::nullopt, "timed out"};
    if (retransmit && now >= next) {
      if (::send(fd, bytes.data(), bytes.size(), 0) < 0) return {std::nullopt, udp_error(errno)};
      interval = invite ? interval * 2 : std::min(interval * 2, kT2);
      next = now + interval;
    }
  }
}

bool write_all(int fd, std::string_view bytes, Clock::time_point deadline, std::string& error) {
  while (!bytes.empty()) {
    auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      error = "send failed: " + errno_text(errno);
      return false;
    }
    if (!wait_for(fd, POLLOUT, deadline)) {
      error = "send timed out";
      return false;
    }
  }
  return true;
}

// Reads framed messages off a TCP connection (sip::frame_stream).
class StreamReader {
 public:
  explicit StreamReader(int fd) : fd_(fd) {}

  // The next message, or nullopt with note set (timeout, close, unframeable bytes).
  std::optional<std::string> next(Clock::time_point deadline, std::string& note) {
    for (;;) {
      // CRLF keep-alive pongs between messages (RFC 5626 4.4.1) carry nothing.
      std::size_t skip = 0;
      while (buffer_.compare(skip, 2, "\r\n") == 0) skip += 2;
      buffer_.erase(0, skip);
      if (!buffer_.empty()) {
        auto framed = sip::frame_stream(buffer_);
        if (framed) {
          auto message = buffer_.substr(0, *framed);
          buffer_.erase(0, *framed);
          return message;
        }
        if (framed.error().code != Errc::incomplete) {
          lost_ = true;
          note = "unframeable stream from the far side: " + std::string(framed.error().detail);
          return std::nullopt;
        }
      }
      if (lost_) {
        note = "connection closed by the far side";
        return std::nullopt;
      }
      if (!wait_for(fd_, POLLIN, deadline)) {
        note = "timed out";
        return std::nullopt;
      }
      char chunk[16384];
      auto n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n > 0) {
        buffer_.append(chunk, static_cast<std::size_t>(n));
      } else if (n == 0) {
        lost_ = true;
      } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        lost_ = true;
        note = "connection lost: " + errno_text(errno);
        return std::nullopt;
      }
    }
  }
  bool lost() const { return lost_; }

 private:
  int fd_;
  std::string buffer_;
  bool lost_ = false;
};

Exchange tcp_transaction(int fd, StreamReader& reader, const std::string& bytes, const sip::Message& request,
                         milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Exchange ex;
  if (!write_all(fd, bytes, deadline, ex.note)) {
    ex.connection_lost = true;
    return ex;
  }
  for (;;) {
    auto message = reader.next(deadline, ex.note);
    if (!message) {
      ex.connection_lost = reader.lost();
      return ex;
    }
    auto m = sip::parse(*message, sip::Framing::stream);
    if (!m || m->is_request || !answers(*m, request) || m->status < 200) continue;
    ex.response = std::move(*message);
    return ex;
  }
}

std::optional<Address> resolve(const std::string& host, std::uint16_t port, std::string& error) {
  if (auto literal = Address::from_ip(host, port)) return literal;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* list = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &list);
  if (rc != 0 || !list) {
    error = "cannot resolve " + host + ": " + ::gai_strerror(rc);
    return std::nullopt;
  }
  auto a = Address::from_sockaddr(list->ai_addr);
  ::freeaddrinfo(list);
  return a.with_port(port);
}

ProbeTransportResult run_transport(Transport transport, const Address& target, const std::optional<Address>& bind,
                                   const ProbeOptions& options) {
  ProbeTransportResult result;
  result.transport = transport;
  result.target = target.to_string();
  for (auto method : kProbeMethods) result.messages.push_back({std::string(method), false, false, 0, {}, {}});
  auto opened = open_socket(transport, target, bind, Clock::now() + options.timeout);
  if (!opened.error.empty()) {
    result.error = opened.error;
    return result;
  }
  result.local = opened.local.to_string();
  const int fd = opened.fd.get();
  const auto framing = transport == Transport::udp ? sip::Framing::datagram : sip::Framing::stream;
  const ProbeEndpoints endpoints{transport, opened.local, media_port_for(opened.local.port())};
  std::string datagram(65536, '\0');
  StreamReader reader(fd);
  bool far_side_answers_probes = true;
  for (auto& m : result.messages) {
    if (!result.error.empty()) {
      m.note = "not sent";
      continue;
    }
    if (m.method == "INVITE" && !far_side_answers_probes) {
      // What does not answer probes relays them: an INVITE could ring a real phone.
      m.note = "not sent: the far side relays probes instead of answering them";
      continue;
    }
    auto text = build_probe_request(endpoints, m.method, random_tokens());
    auto unsealed = sip::parse(text, framing);
    if (!unsealed) {  // what we build always parses; say so rather than send garbage
      m.note = "internal error: the probe request does not parse: " + std::string(unsealed.error().detail);
      continue;
    }
    auto sealed = diag::add_seal(*unsealed, options.key, auth::random_hex(8), true);
    auto request = sip::parse(sealed, framing);
    if (!request) {
      m.note = "internal error: the sealed probe request does not parse: " + std::string(request.error().detail);
      continue;
    }
    m.sent = true;
    auto ex = transport == Transport::udp ? udp_transaction(fd, sealed, *request, options.timeout, datagram)
                                          : tcp_transaction(fd, reader, sealed, *request, options.timeout);
    if (!ex.response) {
      m.note = ex.note;
      if (ex.connection_lost) result.error = ex.note + " (after " + m.method + ")";
      continue;
    }
    auto response = sip::parse(*ex.response, framing);
    if (!response) continue;  // parsed once already while matching
    m.answered = true;
    m.status = response->status;
    m.findings = findings_for(transport, *request, *response, options.key);
    if (!is_seal_report(*response) || !diag::parse_seal_report(response->body)) far_side_answers_probes = false;
    // RFC 3261 17.1.1.3: a non-2xx final response to an INVITE is acknowledged
    // in the same transaction; the far side absorbs the sealed probe ACK.
    if (m.method == "INVITE" && response->status >= 300) {
      auto ack_text = build_probe_ack(*request, *response);
      if (auto ack = sip::parse(ack_text, framing)) {
        auto sealed_ack = diag::add_seal(*ack, options.key, auth::random_hex(8), true);
        std::string error;
        if (transport == Transport::udp) (void)::send(fd, sealed_ack.data(), sealed_ack.size(), 0);
        else if (!write_all(fd, sealed_ack, Clock::now() + options.timeout, error)) result.error = error + " (ACK)";
      }
    }
  }
  add_unanswered_findings(result);
  return result;
}

void write_json_lines(const ProbeTransportResult& r, std::ostream& out) {
  for (const auto& m : r.messages)
    for (const auto& f : m.findings) out << probe_json_line(f) << "\n";
}

std::string no_answer_text(const std::vector<ProbeTransportResult>& results) {
  std::string transports;
  for (const auto& r : results)
    if (!r.any_answer()) transports += (transports.empty() ? "" : ", ") + std::string(config::to_string(r.transport));
  return transports;
}

}  // namespace

std::uint16_t media_port_for(std::uint16_t signalling_port) {
  // RTP on an even port (RFC 3550 11) above ours, RTCP one higher; near the top
  // of the range the pair goes below instead.
  unsigned even = (signalling_port + 2u) & ~1u;
  if (even + 1 > 65535u) even = (signalling_port & ~1u) - 2;
  return static_cast<std::uint16_t>(even);
}

std::string build_probe_request(const ProbeEndpoints& ep, std::string_view method, const ProbeTokens& t) {
  const auto self = ep.local.to_string();
  const auto uri = "sip:" + std::string(kProbeUser) + "@" + self;
  const bool tcp = ep.transport == Transport::tcp;
  const bool invite = method == "INVITE";
  const bool reg = method == "REGISTER";
  const auto body = invite ? sdp_offer(ep, t.sdp_session) : std::string();
  std::string out;
  out.append(method).append(" ").append(uri).append(" SIP/2.0\r\n");
  out += "Via: SIP/2.0/" + std::string(tcp ? "TCP" : "UDP") + " " + self + ";branch=" + t.branch + ";rport\r\n";
  out += "Max-Forwards: 70\r\n";
  out += "From: <" + uri + ">;tag=" + t.from_tag + "\r\n";
  out += "To: <" + uri + ">\r\n";
  out += "Call-ID: " + t.call_id + "@" + ep.local.host() + "\r\n";
  out += "CSeq: " + std::to_string(t.cseq) + " ";
  out.append(method).append("\r\n");
  out += "Contact: <" + uri + (tcp ? ";transport=tcp" : "") + ">\r\n";
  if (reg) {
    out += "Authorization: " + authorization(method, uri, t.nonce) + "\r\n";
    out += "Expires: 0\r\n";  // nothing stays registered should a registrar see it
  }
  out += "User-Agent: sipwitness/" + std::string(kVersion) + " probe\r\n";
  if (invite) out += "Content-Type: application/sdp\r\n";
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out += body;
  return out;
}

std::string build_probe_ack(const sip::Message& invite, const sip::Message& response) {
  std::string out = "ACK " + std::string(invite.request_uri) + " SIP/2.0\r\n";
  out += "Via: " + std::string(sip::top_via(invite)) + "\r\n";  // one Via, the request's top one
  out += "Max-Forwards: 70\r\n";
  out += "From: " + std::string(invite.value(sip::HeaderId::From)) + "\r\n";
  out += "To: " + std::string(response.value(sip::HeaderId::To)) + "\r\n";
  out += "Call-ID: " + std::string(invite.value(sip::HeaderId::CallId)) + "\r\n";
  out += "CSeq: " + std::to_string(invite.cseq_number) + " ACK\r\n";
  out += "User-Agent: sipwitness/" + std::string(kVersion) + " probe\r\n";
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

bool answers(const sip::Message& response, const sip::Message& request) {
  if (response.is_request || !request.is_request || response.cseq_method != request.method) return false;
  auto rv = sip::parse_via(sip::top_via(response));
  auto qv = sip::parse_via(sip::top_via(request));
  if (!rv || !qv || qv->branch.empty() || rv->branch != qv->branch) return false;
  return call_id_local(response.value(sip::HeaderId::CallId)) == call_id_local(request.value(sip::HeaderId::CallId));
}

std::string_view to_string(ProbeDirection d) { return d == ProbeDirection::there ? "there" : "back"; }

std::vector<ProbeFinding> findings_for(Transport transport, const sip::Message& request, const sip::Message& response,
                                       std::string_view key) {
  std::vector<ProbeFinding> out;
  ProbeFinding there{transport, std::string(request.method), ProbeDirection::there, {}, {}, {}};
  ProbeFinding back{transport, std::to_string(response.status) + " (" + std::string(request.method) + ")",
                    ProbeDirection::back, {}, {}, {}};
  // The way there: the far side's check of the request as it arrived.
  std::optional<diag::SealCheck> report;
  if (is_seal_report(response)) report = diag::parse_seal_report(response.body);
  if (report) {
    add_check(*report, there, out);
  } else {
    // An outer answers a probe only when its seal verifies: otherwise it relays
    // the request like any other, and the answer carries no report.
    there.field = std::string(kSealField);
    there.sent = "(present)";
    there.arrived = std::string(kNotRecognised) + std::to_string(response.status) + " without a seal report)";
    out.push_back(std::move(there));
  }
  // The way back: the far side sealed its response as it sent it.
  add_check(diag::check_seal(response, key), back, out);
  return out;
}

bool ProbeTransportResult::any_answer() const {
  return std::any_of(messages.begin(), messages.end(), [](const ProbeMessageResult& m) { return m.answered; });
}

void add_unanswered_findings(ProbeTransportResult& result) {
  if (!result.any_answer()) return;
  for (auto& m : result.messages)
    if (m.sent && !m.answered)
      m.findings.push_back({result.transport, m.method, ProbeDirection::there, "(message)", m.method,
                            std::string(kNoAnswer)});
}

int probe_exit_code(const std::vector<ProbeTransportResult>& results) {
  bool answered = false, found = false;
  for (const auto& r : results) {
    answered = answered || r.any_answer();
    for (const auto& m : r.messages) found = found || !m.findings.empty();
  }
  if (!answered) return 1;
  return found ? 3 : 0;
}

void format_probe_block(const ProbeTransportResult& r, std::ostream& out) {
  out << "probe " << config::to_string(r.transport) << " " << r.target;
  if (!r.local.empty()) out << " from " << r.local;
  out << "\n";
  if (r.local.empty() && !r.error.empty()) {
    out << "  " << r.error << "\n";
    return;
  }
  for (const auto& m : r.messages) {
    out << "  " << m.method << ": ";
    if (!m.sent) out << (m.note.empty() ? std::string("not sent") : m.note) << "\n";
    else if (!m.answered && !m.findings.empty()) out << kNoAnswer.substr(1, kNoAnswer.size() - 2) << "\n";
    else if (!m.answered) out << "no answer (" << m.note << ")\n";
    else out << message_summary(m) << "\n";
    if (!m.answered) continue;
    for (const auto& f : m.findings)
      out << "    [" << to_string(f.direction) << "] " << f.field << ": sent " << shown(f.sent) << " arrived "
          << shown(f.arrived) << "\n";
  }
  if (!r.error.empty()) out << "  " << r.error << "\n";
}

std::string probe_summary(const std::vector<ProbeTransportResult>& results) {
  auto code = probe_exit_code(results);
  std::string out = "result: ";
  out += code == 1 ? "no answer" : code == 3 ? "rewritten" : "nothing rewritten";
  out += " (exit " + std::to_string(code) + ")";
  if (code != 1) {
    auto silent = no_answer_text(results);
    if (!silent.empty()) out += "; no answer on " + silent;
  }
  return out;
}

void format_probe_text(const std::vector<ProbeTransportResult>& results, std::ostream& out) {
  for (const auto& r : results) format_probe_block(r, out);
  out << probe_summary(results) << "\n";
}

std::string probe_json_line(const ProbeFinding& f) {
  nlohmann::ordered_json j{{"transport", config::to_string(f.transport)},
                           {"message", f.message},
                           {"direction", to_string(f.direction)},
                           {"field", f.field},
                           {"sent", f.sent},
                           {"arrived", f.arrived}};
  // Values off the wire may hold any bytes: replace what is not UTF-8 rather than throw.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

int run_probe(const ProbeOptions& options, std::ostream& out, std::ostream& err) {
  if (options.key.empty()) {
    err << "sipwitness probe: no lab key\n";
    return 2;
  }
  if (options.transports.empty()) {
    err << "sipwitness probe: no transport to probe\n";
    return 2;
  }
  for (auto t : options.transports)
    if (t != Transport::udp && t != Transport::tcp) {
      err << "sipwitness probe: transport " << config::to_string(t) << " is not supported (udp, tcp)\n";
      return 2;
    }
  if (options.timeout <= milliseconds::zero()) {
    err << "sipwitness probe: the timeout must be positive\n";
    return 2;
  }
  std::optional<Address> bind;
  if (!options.bind_ip.empty()) {
    bind = Address::from_ip(options.bind_ip, 0);
    if (!bind) {
      err << "sipwitness probe: --bind " << options.bind_ip << ": not an IP address\n";
      return 2;
    }
  }
  std::string error;
  auto target = resolve(options.target_host, options.target_port, error);
  if (!target) {
    err << "sipwitness probe: " << error << "\n";
    return 1;
  }
  if (bind && bind->family() != target->family()) {
    err << "sipwitness probe: --bind " << options.bind_ip << " and the target " << target->ip()
        << " are of different address families\n";
    return 2;
  }
  std::vector<ProbeTransportResult> results;
  for (auto t : options.transports) {
    results.push_back(run_transport(t, *target, bind, options));
    // Shown as each transport finishes: a full run takes a few timeouts.
    if (options.format == ProbeFormat::text) format_probe_block(results.back(), out);
    else write_json_lines(results.back(), out);
    out.flush();
  }
  if (options.format == ProbeFormat::text) out << probe_summary(results) << "\n";
  auto code = probe_exit_code(results);
  auto unrecognised = [](const ProbeTransportResult& r) {
    return std::any_of(r.messages.begin(), r.messages.end(), [](const ProbeMessageResult& m) {
      return std::any_of(m.findings.begin(), m.findings.end(),
                         [](const ProbeFinding& f) { return f.arrived.starts_with(kNotRecognised); });
    });
  };
  auto invalid_both_ways = [](const ProbeTransportResult& r) {
    return std::any_of(r.messages.begin(), r.messages.end(), [](const ProbeMessageResult& m) {
      auto invalid = [&](ProbeDirection d) {
        return std::any_of(m.findings.begin(), m.findings.end(), [&](const ProbeFinding& f) {
          return f.direction == d && f.field == kSealField && f.arrived.starts_with("invalid");
        });
      };
      return invalid(ProbeDirection::there) && invalid(ProbeDirection::back);
    });
  };
  // A device that edits seals would hardly do so both ways: this is the key.
  if (std::any_of(results.begin(), results.end(), invalid_both_ways))
    err << "sipwitness probe: seals invalid both ways: the far side most likely uses another lab key\n";
  if (std::any_of(results.begin(), results.end(), unrecognised))
    err << "sipwitness probe: answers without a seal report: the device stripped or changed the seal, the far side "
           "uses another lab key, or it is not a sipwitness with lab.role outer\n";
  if (code == 1)
    err << "sipwitness probe: no answer from " << target->to_string() << " (" << no_answer_text(results)
        << "): the target is unreachable, is not a sipwitness with lab.role outer, or uses another lab key\n";
  else if (auto silent = no_answer_text(results); !silent.empty())
    err << "sipwitness probe: no answer on " << silent << " from " << target->to_string() << "\n";
  return code;
}

}  // namespace sw::proxy
