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

// Every occurrence of from replaced with to.
inline std::string replace_all(std::string text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

// What an ALG does: replaces the first `from` in each header line starting with
// prefix (the body is left alone).
inline std::string replace_in_header_lines(std::string text, std::string_view prefix, std::string_view from,
                                           std::string_view to) {
  std::size_t line = 0;
  while (line < text.size()) {
    auto end = text.find("\r\n", line);
    if (end == std::string::npos || end == line) break;  // the header block ends at the empty line
    if (std::string_view(text).substr(line).starts_with(prefix)) {
      auto at = text.find(from, line);
      if (at != std::string::npos && at < end) text.replace(at, from.size(), to);
      end = text.find("\r\n", line);
    }
    line = end + 2;
  }
  return text;
}

}  // namespace sw::test
