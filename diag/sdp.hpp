#pragma once
// What the diagnosis reads of SDP bodies: lines, not a session model.
#include <string_view>

#include "proxy/sip/message.hpp"
#include "proxy/sip/text.hpp"

namespace sw::diag {

// Whether m carries SDP in the clear: Content-Type application/sdp, no content coding.
inline bool has_sdp_body(const sip::Message& m) {
  if (m.body.empty()) return false;
  if (!sip::iequals(sip::media_type(m), "application/sdp")) return false;
  auto encoding = sip::trim(m.value(sip::HeaderId::ContentEncoding));
  return encoding.empty() || sip::iequals(encoding, "identity");
}

// Calls f(line) for every line of an SDP body, without its CRLF (or bare LF).
template <class F>
void for_each_sdp_line(std::string_view body, F&& f) {
  while (!body.empty()) {
    auto nl = body.find('\n');
    auto line = body.substr(0, nl);
    body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    f(line);
  }
}

}  // namespace sw::diag
