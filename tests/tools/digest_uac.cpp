// A REGISTER client built on sipwitness's auth library, for interop tests
// against real registrars and for end-to-end tests of the verdict log: it answers
// 401/407 challenges with auth::compute_response and can be told to misbehave
// the way real phones do. Blocking UDP, one flow (one Call-ID), bounded waits.
//
//   digest_uac --server 127.0.0.1:5060 --domain kam.test --user 1001 --password secret
//
// Optional (each changes one thing about the answer to the challenge):
//   --answer-realm R      answer with realm R instead of the challenged one
//   --auth-user U         answer with username U instead of --user (the AOR user)
//   --uri U               digest uri= U instead of the Request-URI (sip:DOMAIN)
//   --delay-answer S      wait S seconds (decimal) before each answer (nonce expiry)
//   --no-answer           receive the first challenge and stop (the phone gave up)
//   --attempts N          answer up to N successive challenges (default 1)
//   --timeout S           wait at most S seconds for each response (default 3)
//   --call-id ID          Call-ID to use (default digest-uac-<local port>)
//   --expires N           Expires of the REGISTER (default 60)
//
// Output, one line per step on stdout:
//   local: 127.0.0.1:PORT call-id: ID
//   sent: REGISTER sip:D cseq=N [with Authorization]
//   received: SIP/2.0 401 Unauthorized
//   challenge: realm=R algorithm=A qop=Q stale=true|false nonce=N
//   delay: S s before answering
//   answering: username=U realm=R uri=URI algorithm=A
//   answer: SIP/2.0 200 OK          (the response to a request with credentials)
//   result: registered|registered-without-challenge|rejected|gave-up|refused|no-response|error
// Exit codes:
//   0 registered (2xx, with or without a challenge)
//   1 other failure (unexpected or unparseable response, no usable challenge, socket)
//   2 bad usage
//   3 still challenged (401/407) after answering --attempts challenges
//   4 --no-answer: challenged and deliberately gave up
//   5 a final status other than 2xx/401/407 (e.g. 403)
//   6 no response within --timeout
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include "auth/digest.hpp"
#include "proxy/sip/message.hpp"
#include "proxy/sip/text.hpp"

namespace {

enum Exit : int {
  registered = 0,
  failure = 1,
  usage = 2,
  rejected = 3,
  gave_up = 4,
  refused = 5,
  no_response = 6,
};

struct Options {
  std::string server_ip;
  int server_port = 5060;
  std::string domain, user, password;
  std::optional<std::string> answer_realm, auth_user, digest_uri, call_id;
  double delay_answer_s = 0;
  bool no_answer = false;
  int attempts = 1;
  double timeout_s = 3;
  int expires = 60;
};

bool parse_number(const std::string& text, double& out) {
  try {
    std::size_t used = 0;
    out = std::stod(text, &used);
    return used == text.size() && out >= 0;
  } catch (...) {
    return false;
  }
}

bool parse_int(const std::string& text, int& out) {
  try {
    std::size_t used = 0;
    out = std::stoi(text, &used);
    return used == text.size();
  } catch (...) {
    return false;
  }
}

std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    if (key == "--no-answer") {
      o.no_answer = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::cerr << "missing value for " << key << "\n";
      return std::nullopt;
    }
    std::string value = argv[++i];
    if (key == "--server") {
      auto colon = value.rfind(':');
      if (colon == std::string::npos || !parse_int(value.substr(colon + 1), o.server_port)) return std::nullopt;
      o.server_ip = value.substr(0, colon);
    } else if (key == "--domain") {
      o.domain = value;
    } else if (key == "--user") {
      o.user = value;
    } else if (key == "--password") {
      o.password = value;
    } else if (key == "--answer-realm") {
      o.answer_realm = value;
    } else if (key == "--auth-user") {
      o.auth_user = value;
    } else if (key == "--uri") {
      o.digest_uri = value;
    } else if (key == "--call-id") {
      o.call_id = value;
    } else if (key == "--delay-answer") {
      if (!parse_number(value, o.delay_answer_s)) return std::nullopt;
    } else if (key == "--timeout") {
      if (!parse_number(value, o.timeout_s) || o.timeout_s <= 0 || o.timeout_s > 600) return std::nullopt;
    } else if (key == "--attempts") {
      if (!parse_int(value, o.attempts) || o.attempts < 0 || o.attempts > 100) return std::nullopt;
    } else if (key == "--expires") {
      if (!parse_int(value, o.expires) || o.expires < 0) return std::nullopt;
    } else {
      std::cerr << "unknown option " << key << "\n";
      return std::nullopt;
    }
  }
  if (o.server_ip.empty() || o.domain.empty() || o.user.empty()) return std::nullopt;
  return o;
}

class Udp {
 public:
  explicit Udp(const Options& o) : fd_(socket(AF_INET, SOCK_DGRAM, 0)) {
    if (fd_ < 0) return;
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return;
    socklen_t len = sizeof local;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    port_ = ntohs(local.sin_port);
    server_.sin_family = AF_INET;
    server_.sin_port = htons(static_cast<std::uint16_t>(o.server_port));
    ok_ = inet_pton(AF_INET, o.server_ip.c_str(), &server_.sin_addr) == 1;
  }
  ~Udp() {
    if (fd_ >= 0) close(fd_);
  }
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;
  bool ok() const { return ok_ && port_ != 0; }
  int port() const { return port_; }
  bool send(const std::string& text) {
    return sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) ==
           static_cast<ssize_t>(text.size());
  }
  // The next datagram, or "" once `deadline` has passed.
  std::string receive(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return {};
      pollfd p{fd_, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left.count()));
      if (r == 0) return {};
      if (r < 0) continue;  // EINTR
      char buf[65536];
      auto n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) continue;  // e.g. ICMP port unreachable surfaced as ECONNREFUSED
      return std::string(buf, static_cast<std::size_t>(n));
    }
  }

 private:
  int fd_;
  int port_ = 0;
  bool ok_ = false;
  sockaddr_in server_{};
};

std::string first_line(const std::string& text) { return text.substr(0, text.find("\r\n")); }

struct Flow {
  const Options& o;
  int port;
  std::string call_id;

  std::string request(std::uint32_t cseq, const std::string& authorization) const {
    std::string uri = "sip:" + o.domain;
    std::string p = std::to_string(port);
    std::string text = "REGISTER " + uri + " SIP/2.0\r\n" + "Via: SIP/2.0/UDP 127.0.0.1:" + p +
                       ";branch=z9hG4bKuac" + p + "x" + std::to_string(cseq) + ";rport\r\n" + "Max-Forwards: 70\r\n" +
                       "From: <sip:" + o.user + "@" + o.domain + ">;tag=uac" + p + "\r\n" + "To: <sip:" + o.user + "@" +
                       o.domain + ">\r\n" + "Call-ID: " + call_id + "\r\n" + "CSeq: " + std::to_string(cseq) +
                       " REGISTER\r\n" + "Contact: <sip:" + o.user + "@127.0.0.1:" + p + ">\r\n" +
                       "Expires: " + std::to_string(o.expires) + "\r\n" + "User-Agent: sipwitness-digest-uac\r\n";
    if (!authorization.empty()) text += authorization + "\r\n";
    return text + "Content-Length: 0\r\n\r\n";
  }
};

}  // namespace

int main(int argc, char** argv) {
  using namespace sw;
  auto options = parse_args(argc, argv);
  if (!options) {
    std::cerr << "usage: digest_uac --server IP:PORT --domain D --user U --password P\n"
                 "       [--answer-realm R] [--auth-user U] [--uri URI] [--delay-answer S] [--no-answer]\n"
                 "       [--attempts N] [--timeout S] [--call-id ID] [--expires N]\n";
    return usage;
  }
  const auto& o = *options;
  Udp udp(o);
  if (!udp.ok()) {
    std::cerr << "socket setup failed: " << std::strerror(errno) << "\n";
    std::cout << "result: error" << std::endl;
    return failure;
  }
  Flow flow{o, udp.port(), o.call_id.value_or("digest-uac-" + std::to_string(udp.port()))};
  std::cout << "local: 127.0.0.1:" << udp.port() << " call-id: " << flow.call_id << std::endl;

  const auto wait = std::chrono::milliseconds(static_cast<long long>(o.timeout_s * 1000));
  const std::string request_uri = "sip:" + o.domain;
  std::uint32_t cseq = 1;
  int answered = 0;
  std::string authorization;  // of the request last sent

  for (;;) {
    if (!udp.send(flow.request(cseq, authorization))) {
      std::cerr << "send failed: " << std::strerror(errno) << "\n";
      std::cout << "result: error" << std::endl;
      return failure;
    }
    std::cout << "sent: REGISTER " << request_uri << " cseq=" << cseq
              << (authorization.empty() ? "" : " with credentials") << std::endl;

    // The final response to this CSeq (provisional ones, strays and
    // retransmitted answers to earlier CSeqs are skipped).
    std::string text;
    std::optional<sip::Message> response;
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      text = udp.receive(deadline);
      if (text.empty()) break;
      auto parsed = sip::parse(text, sip::Framing::datagram);
      if (!parsed) {
        std::cout << "ignored: unparseable datagram: " << first_line(text) << std::endl;
        continue;
      }
      if (parsed->is_request || parsed->cseq_number != cseq) continue;
      if (parsed->status < 200) {
        std::cout << "received: " << first_line(text) << std::endl;
        continue;
      }
      response = *parsed;
      break;
    }
    if (!response) {
      std::cout << "received: nothing within " << o.timeout_s << " s" << std::endl;
      std::cout << "result: no-response" << std::endl;
      return no_response;
    }
    const std::string status_line = first_line(text);
    std::cout << "received: " << status_line << std::endl;
    if (!authorization.empty()) std::cout << "answer: " << status_line << std::endl;

    const int status = response->status;
    if (status >= 200 && status < 300) {
      std::cout << "result: " << (answered ? "registered" : "registered-without-challenge") << std::endl;
      return registered;
    }
    if (status != 401 && status != 407) {
      std::cout << "result: refused with " << status << std::endl;
      return answered ? refused : failure;
    }

    const bool proxy = status == 407;
    auto challenges =
        auth::parse_challenges(response->value(proxy ? sip::HeaderId::ProxyAuthenticate : sip::HeaderId::WwwAuthenticate));
    if (!challenges || challenges->empty()) {
      std::cerr << "no usable Digest challenge in the " << status << "\n";
      std::cout << "result: error" << std::endl;
      return failure;
    }
    const auto& c = challenges->front();
    auto qop = c.qops.empty() ? auth::Qop::none : c.qops.front();
    std::cout << "challenge: realm=" << c.realm << " algorithm=" << auth::to_string(c.algorithm)
              << " qop=" << auth::to_string(qop) << " stale=" << (c.stale ? "true" : "false") << " nonce=" << c.nonce
              << std::endl;

    if (o.no_answer) {
      std::cout << "result: gave-up (not answering the challenge: --no-answer)" << std::endl;
      return gave_up;
    }
    if (answered >= o.attempts) {
      std::cout << "result: rejected (still challenged after " << answered << " answer"
                << (answered == 1 ? "" : "s") << ")" << std::endl;
      return rejected;
    }

    if (o.delay_answer_s > 0) {
      std::cout << "delay: " << o.delay_answer_s << " s before answering" << std::endl;
      std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<long long>(o.delay_answer_s * 1000)));
    }

    const std::string username = o.auth_user.value_or(o.user);
    const std::string realm = o.answer_realm.value_or(c.realm);
    const std::string uri = o.digest_uri.value_or(request_uri);
    const std::string cnonce = "0a4f113b" + std::to_string(answered);
    const std::string nc = "00000001";
    // HA1 over the realm actually answered, as a phone configured with that realm computes it.
    auto ha1 = auth::compute_ha1(c.algorithm, username, realm, o.password);
    ++cseq;
    auth::DigestInput in{c.algorithm, ha1, c.nonce, cnonce, nc, qop, "REGISTER", uri, ""};
    auto digest = auth::compute_response(in);
    authorization = std::string(proxy ? "Proxy-Authorization" : "Authorization") + ": Digest username=\"" +
                    username + "\", realm=\"" + realm + "\", nonce=\"" + c.nonce + "\", uri=\"" + uri +
                    "\", response=\"" + digest + "\", algorithm=" + std::string(auth::to_string(c.algorithm));
    if (qop != auth::Qop::none)
      authorization += ", qop=" + std::string(auth::to_string(qop)) + ", nc=" + nc + ", cnonce=\"" + cnonce + "\"";
    if (!c.opaque.empty()) authorization += ", opaque=\"" + c.opaque + "\"";
    std::cout << "answering: username=" << username << " realm=" << realm << " uri=" << uri
              << " algorithm=" << auth::to_string(c.algorithm) << std::endl;
    ++answered;
  }
}
