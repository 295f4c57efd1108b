#include "observer.hpp"

#include "auth/digest_header.hpp"

namespace sw::diag {
namespace {

void append_auth(std::string& out, std::string_view label, std::string_view value) {
  auto h = auth::parse_auth_header(value);
  if (!out.empty()) out += ' ';
  out += "[";
  out += label;
  if (!h) {
    out += " unparsable: ";
    out += h.error().detail;
    out += "]";
    return;
  }
  out += " ";
  out += h->scheme;
  for (auto name : {"username", "realm", "algorithm", "qop", "stale", "uri"}) {
    if (auto v = h->get(name)) {
      out += " ";
      out += name;
      out += "=";
      out += *v;
    }
  }
  out += "]";
}

}  // namespace

std::string summarize(const Observed& e) {
  const auto& m = e.message;
  std::string out = e.direction == Direction::received ? "<- " : "-> ";
  out += e.leg == Leg::phone ? "phone " : "upstream ";
  out += e.peer;
  out += " ";
  out += e.transport;
  out += " ";
  if (m.is_request) {
    out += m.method;
    out += " ";
    out += m.request_uri;
  } else {
    out += std::to_string(m.status);
    out += " ";
    out += m.reason;
    out += " (";
    out += m.cseq_method;
    out += ")";
  }
  out += " call-id=";
  out += m.value(sip::HeaderId::CallId);
  if (auto auth = auth_summary(m); !auth.empty()) {
    out += ' ';
    out += auth;
  }
  return out;
}

std::string auth_summary(const sip::Message& m) {
  std::string out;
  for (const auto& h : m.headers) {
    switch (h.id) {
      case sip::HeaderId::Authorization: append_auth(out, "Authorization", h.value); break;
      case sip::HeaderId::ProxyAuthorization: append_auth(out, "Proxy-Authorization", h.value); break;
      case sip::HeaderId::WwwAuthenticate: append_auth(out, "WWW-Authenticate", h.value); break;
      case sip::HeaderId::ProxyAuthenticate: append_auth(out, "Proxy-Authenticate", h.value); break;
      default: break;
    }
  }
  return out;
}

}  // namespace sw::diag
