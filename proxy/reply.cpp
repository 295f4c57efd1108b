#include "reply.hpp"

#include "proxy/forward.hpp"
#include "proxy/hash.hpp"
#include "proxy/sip/text.hpp"
#include "proxy/version.hpp"

namespace sw::proxy {
namespace {

struct Parts {
  std::vector<std::string_view> vias;  // Via header values, top first
  std::string_view from, to, call_id, cseq;
};

std::string build(const Parts& p, const Address& source, int status, std::string_view reason,
                  std::string_view warning, std::string_view secret, std::string_view extra_headers,
                  std::string_view body = {}) {
  std::string out = "SIP/2.0 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
  for (std::size_t i = 0; i < p.vias.size(); ++i) {
    out += "Via: ";
    std::string_view first;
    if (i == 0) {
      sip::for_each_list_item(p.vias[0], [&](std::string_view item) {
        first = item;
        return false;
      });
    }
    if (!first.empty()) {
      // The top header may hold several elements; received/rport go on the first.
      auto offset = static_cast<std::size_t>(first.data() - p.vias[0].data());
      out.append(p.vias[0].substr(0, offset));
      out += via_with_received(first, source);
      out.append(p.vias[0].substr(offset + first.size()));
    } else {
      out.append(p.vias[i]);
    }
    out += "\r\n";
  }
  out += "From: " + std::string(p.from) + "\r\n";
  out += "To: " + std::string(p.to);
  if (status > 100 && sip::tag_of(p.to).empty())
    out += ";tag=" + local_tag(p.call_id, sip::tag_of(p.from), secret);
  out += "\r\nCall-ID: " + std::string(p.call_id) + "\r\n";
  out += "CSeq: " + std::string(p.cseq) + "\r\n";
  out += "Server: sipwitness/" + std::string(kVersion) + "\r\n";
  out.append(extra_headers);
  if (!warning.empty()) {
    // Warning: 399 agent "text" (RFC 3261 20.43); quotes and backslashes escaped.
    out += "Warning: 399 sipwitness \"";
    for (char c : warning) {
      if (c == '"' || c == '\\') out += '\\';
      if (c >= ' ') out += c;
    }
    out += "\"\r\n";
  }
  out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  out.append(body);
  return out;
}

}  // namespace

std::string make_ack(const sip::Message& invite_sent, const sip::Message& response) {
  std::string out = "ACK " + std::string(invite_sent.request_uri) + " SIP/2.0\r\n";
  out += "Via: " + std::string(sip::top_via(response)) + "\r\n";
  out += "Max-Forwards: 70\r\n";
  for (const auto& h : invite_sent.headers)
    if (h.id == sip::HeaderId::Route) out += "Route: " + std::string(h.value) + "\r\n";
  out += "From: " + std::string(response.value(sip::HeaderId::From)) + "\r\n";
  out += "To: " + std::string(response.value(sip::HeaderId::To)) + "\r\n";
  out += "Call-ID: " + std::string(response.value(sip::HeaderId::CallId)) + "\r\n";
  auto cseq = response.value(sip::HeaderId::CSeq);
  out += "CSeq: " + std::string(cseq.substr(0, cseq.find_first_of(" \t"))) + " ACK\r\n";
  out += "Content-Length: 0\r\n\r\n";
  return out;
}

std::string local_tag(std::string_view call_id, std::string_view from_tag, std::string_view secret) {
  return "sw" + Fnv64{}.add(secret).add(call_id).add(from_tag).hex();
}

std::string local_tag(const sip::Message& request, std::string_view secret) {
  return local_tag(request.value(sip::HeaderId::CallId), sip::tag_of(request.value(sip::HeaderId::From)), secret);
}

std::string make_reply(const sip::Message& request, const Address& source, int status, std::string_view reason,
                       std::string_view warning, std::string_view secret, std::string_view extra_headers,
                       std::string_view body) {
  Parts p;
  for (const auto& h : request.headers)
    if (h.id == sip::HeaderId::Via) p.vias.push_back(h.value);
  p.from = request.value(sip::HeaderId::From);
  p.to = request.value(sip::HeaderId::To);
  p.call_id = request.value(sip::HeaderId::CallId);
  p.cseq = request.value(sip::HeaderId::CSeq);
  return build(p, source, status, reason, warning, secret, extra_headers, body);
}

std::string make_probe_answer(const sip::Message& request, const Address& source, const diag::SealCheck& check,
                              std::string_view secret) {
  const bool invite = request.method == "INVITE";
  return make_reply(request, source, invite ? 488 : 200, invite ? "Probe Answered" : "OK", {}, secret,
                    "Content-Type: " + std::string(diag::kSealReportType) + "\r\n", diag::seal_report_json(check));
}

std::string make_reply(const sip::Salvage& s, const Address& source, int status, std::string_view reason,
                       std::string_view warning, std::string_view secret) {
  if (!s.is_request || s.method == "ACK" || !s.has_via()) return {};
  Parts p;
  for (const auto& [id, value] : s.headers) {
    switch (id) {
      case sip::HeaderId::Via: p.vias.push_back(value); break;
      case sip::HeaderId::From: if (p.from.empty()) p.from = value; break;
      case sip::HeaderId::To: if (p.to.empty()) p.to = value; break;
      case sip::HeaderId::CallId: if (p.call_id.empty()) p.call_id = value; break;
      case sip::HeaderId::CSeq: if (p.cseq.empty()) p.cseq = value; break;
      default: break;
    }
  }
  return build(p, source, status, reason, warning, secret, {});
}

}  // namespace sw::proxy
