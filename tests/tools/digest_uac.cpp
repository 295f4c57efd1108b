// A minimal REGISTER client built on sipwitness's auth library, for interop
// tests against real registrars: it answers the 401 with auth::compute_response
// and reports what happened. Blocking UDP, one registration, bounded waits.
//
//   digest_uac --server 127.0.0.1:5060 --domain kam.test --user 1001 --password secret
// Exit: 0 registered (200), 3 rejected after answering the challenge, 1 other failure.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "auth/digest.hpp"
#include "proxy/sip/message.hpp"
#include "proxy/sip/text.hpp"

namespace {

struct Options {
  std::string server_ip;
  int server_port = 5060;
  std::string domain, user, password;
};

std::optional<Options> parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i], value = argv[i + 1];
    if (key == "--server") {
      auto colon = value.rfind(':');
      if (colon == std::string::npos) return std::nullopt;
      o.server_ip = value.substr(0, colon);
      o.server_port = std::stoi(value.substr(colon + 1));
    } else if (key == "--domain") {
      o.domain = value;
    } else if (key == "--user") {
      o.user = value;
    } else if (key == "--password") {
      o.password = value;
    } else {
      return std::nullopt;
    }
  }
  if (o.server_ip.empty() || o.domain.empty() || o.user.empty()) return std::nullopt;
  return o;
}

class Udp {
 public:
  explicit Udp(const Options& o) : fd_(socket(AF_INET, SOCK_DGRAM, 0)) {
    sockaddr_in local{};
    local.sin_family = AF_INET;
    local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
    socklen_t len = sizeof local;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    port_ = ntohs(local.sin_port);
    server_.sin_family = AF_INET;
    server_.sin_port = htons(static_cast<std::uint16_t>(o.server_port));
    inet_pton(AF_INET, o.server_ip.c_str(), &server_.sin_addr);
  }
  ~Udp() { close(fd_); }
  int port() const { return port_; }
  void send(const std::string& text) {
    sendto(fd_, text.data(), text.size(), 0, reinterpret_cast<const sockaddr*>(&server_), sizeof server_);
  }
  // The next final response (provisional ones are skipped), or "" after 3 s.
  std::string receive_final() {
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 3000) <= 0) return {};
      char buf[65536];
      auto n = recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return {};
      std::string text(buf, static_cast<std::size_t>(n));
      if (text.rfind("SIP/2.0 1", 0) != 0) return text;
    }
  }

 private:
  int fd_;
  int port_ = 0;
  sockaddr_in server_{};
};

std::string register_request(const Options& o, int port, int cseq, const std::string& authorization) {
  std::string uri = "sip:" + o.domain;
  std::string text = "REGISTER " + uri + " SIP/2.0\r\n" + "Via: SIP/2.0/UDP 127.0.0.1:" + std::to_string(port) +
                     ";branch=z9hG4bKuac" + std::to_string(cseq) + ";rport\r\n" + "Max-Forwards: 70\r\n" +
                     "From: <sip:" + o.user + "@" + o.domain + ">;tag=uac" + std::to_string(port) + "\r\n" +
                     "To: <sip:" + o.user + "@" + o.domain + ">\r\n" + "Call-ID: digest-uac-" +
                     std::to_string(port) + "\r\n" + "CSeq: " + std::to_string(cseq) + " REGISTER\r\n" +
                     "Contact: <sip:" + o.user + "@127.0.0.1:" + std::to_string(port) + ">\r\n" +
                     "Expires: 60\r\n";
  if (!authorization.empty()) text += authorization + "\r\n";
  return text + "Content-Length: 0\r\n\r\n";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sw;
  auto options = parse_args(argc, argv);
  if (!options) {
    std::cerr << "usage: digest_uac --server IP:PORT --domain D --user U --password P\n";
    return 1;
  }
  const auto& o = *options;
  Udp udp(o);
  udp.send(register_request(o, udp.port(), 1, ""));
  auto first = udp.receive_final();
  auto parsed = sip::parse(first, sip::Framing::datagram);
  if (!parsed || parsed->status != 401) {
    std::cerr << "expected 401, got: " << first.substr(0, first.find("\r\n")) << "\n";
    return 1;
  }
  auto challenges = auth::parse_challenges(parsed->value(sip::HeaderId::WwwAuthenticate));
  if (!challenges || challenges->empty()) {
    std::cerr << "no usable Digest challenge\n";
    return 1;
  }
  const auto& c = challenges->front();
  auto qop = c.qops.empty() ? auth::Qop::none : c.qops.front();
  std::string uri = "sip:" + o.domain;
  std::string cnonce = "0a4f113b", nc = "00000001";
  auto ha1 = auth::compute_ha1(c.algorithm, o.user, c.realm, o.password);
  auth::DigestInput in{c.algorithm, ha1, c.nonce, cnonce, nc, qop, "REGISTER", uri, ""};
  auto response = auth::compute_response(in);
  std::string authorization = "Authorization: Digest username=\"" + o.user + "\", realm=\"" + c.realm +
                              "\", nonce=\"" + c.nonce + "\", uri=\"" + uri + "\", response=\"" + response +
                              "\", algorithm=" + std::string(auth::to_string(c.algorithm));
  if (qop != auth::Qop::none)
    authorization += ", qop=" + std::string(auth::to_string(qop)) + ", nc=" + nc + ", cnonce=\"" + cnonce + "\"";
  if (!c.opaque.empty()) authorization += ", opaque=\"" + c.opaque + "\"";
  std::cout << "challenge: realm=" << c.realm << " algorithm=" << auth::to_string(c.algorithm)
            << " qop=" << auth::to_string(qop) << "\n";

  udp.send(register_request(o, udp.port(), 2, authorization));
  auto second = udp.receive_final();
  auto status_line = second.substr(0, second.find("\r\n"));
  std::cout << "answer: " << status_line << "\n";
  if (status_line.rfind("SIP/2.0 200", 0) == 0) return 0;
  return status_line.empty() ? 1 : 3;
}
