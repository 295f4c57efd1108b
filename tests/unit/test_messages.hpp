#pragma once
// Builders for hand-written SIP messages in tests (CRLF line endings).
#include <deque>
#include <stdexcept>
#include <string>
#include <string_view>

#include "proxy/sip/message.hpp"

namespace sw::test {

// Joins lines with CRLF and ends the header block; body appended after it.
inline std::string sip_text(std::initializer_list<std::string_view> lines, std::string_view body = "") {
  std::string out;
  for (auto l : lines) {
    out.append(l);
    out.append("\r\n");
  }
  out.append("\r\n");
  out.append(body);
  return out;
}

// Parsed messages are views: the text they view is kept alive here for the
// whole test run, so tests can parse temporaries.
inline sip::Message parse_ok(std::string text, sip::Framing framing = sip::Framing::datagram) {
  static std::deque<std::string> keep_alive;
  const auto& stored = keep_alive.emplace_back(std::move(text));
  auto r = sip::parse(stored, framing);
  if (!r) throw std::runtime_error(std::string("test message does not parse: ") + std::string(r.error().detail));
  return *r;
}

}  // namespace sw::test
