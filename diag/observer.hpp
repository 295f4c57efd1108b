#pragma once
// The diag layer sees every message the proxy (or, later, a capture reader)
// observes, both directions, with its leg and time. It never touches sockets.
#include <chrono>
#include <string>
#include <string_view>

#include "proxy/sip/message.hpp"

namespace sw::diag {

enum class Direction { received, sent };
enum class Leg { phone, upstream };  // which side of sipwitness the peer is on

struct Observed {
  Direction direction;
  Leg leg;
  std::chrono::system_clock::time_point time;  // injected by the caller
  std::string_view transport;                  // "udp", "tcp"
  std::string_view peer;                       // "ip:port"
  const sip::Message& message;
};

class Observer {
 public:
  virtual ~Observer() = default;
  virtual void on_message(const Observed& event) = 0;
};

// One line per message: direction, peer, the start line, Call-ID, and the digest
// exchange in short (scheme, username, realm, algorithm, qop, stale; never the
// response or a password). The line goes to a sink the caller provides.
std::string summarize(const Observed& event);

}  // namespace sw::diag
