#include "uri.hpp"

#include "text.hpp"

namespace sw::sip {
namespace {

constexpr CharSet kHostChars{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._"};
constexpr CharSet kSchemeChars{"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-."};
constexpr CharSet kParamEnd{";\""};
constexpr CharSet kNotInUri{" \t\r\n<>\""};
constexpr CharSet kUriMarks = kNotInUri.with("@?;");  // and what splits a SIP URI

bool valid_host(std::string_view h) {
  if (h.empty()) return false;
  if (h.front() == '[') return h.size() > 2 && h.back() == ']';
  return kHostChars.all_in(h);
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view hp) {
  std::string_view host = hp;
  std::string_view port_text;
  if (!hp.empty() && hp.front() == '[') {
    auto close = hp.find(']');
    if (close == std::string_view::npos) return Error{Errc::bad_uri, "unterminated IPv6 reference"};
    host = hp.substr(0, close + 1);
    auto rest = hp.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return Error{Errc::bad_uri, "garbage after IPv6 reference"};
      port_text = rest.substr(1);
    }
  } else if (auto colon = hp.rfind(':'); colon != std::string_view::npos) {
    host = hp.substr(0, colon);
    port_text = hp.substr(colon + 1);
  }
  std::uint16_t port = 0;
  if (!port_text.empty() || hp.ends_with(':')) {
    auto p = parse_uint<std::uint16_t>(port_text);
    if (!p || *p == 0) return Error{Errc::bad_uri, "port out of range"};
    port = *p;
  }
  if (!valid_host(host)) return Error{Errc::bad_uri, "malformed host"};
  return HostPort{host, port};
}

bool Uri::is_sip() const { return iequals(scheme, "sip") || iequals(scheme, "sips"); }
bool Uri::is_sips() const { return iequals(scheme, "sips"); }
std::optional<std::string_view> Uri::param(std::string_view name) const { return find_param(params, name); }
std::string_view Uri::transport() const { return param("transport").value_or(std::string_view{}); }
std::string_view Uri::maddr() const { return param("maddr").value_or(std::string_view{}); }

Result<Uri> parse_uri(std::string_view text) {
  Uri u;
  auto colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0) return Error{Errc::bad_uri, "URI without scheme"};
  u.scheme = text.substr(0, colon);
  if (!kSchemeChars.all_in(u.scheme)) return Error{Errc::bad_uri, "malformed URI scheme"};
  auto rest = text.substr(colon + 1);
  // One pass over the rest (URIs are read several times per message): a
  // forbidden character fails any scheme, and the marks that split a SIP URI
  // are found on the way. The user part may contain ';' and '?' (RFC 3261 25.1
  // user-unreserved) but never an unescaped '@', so the host part starts after
  // the last '@', and only a '?' after it starts the URI headers and only a
  // ';' between the two the parameters.
  constexpr auto npos = std::string_view::npos;
  std::size_t at = npos, q = npos, semi = npos;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (!kUriMarks.has(c)) continue;
    if (kNotInUri.has(c)) return Error{Errc::bad_uri, "forbidden character in URI"};
    if (c == '@') {
      at = i;
      q = semi = npos;
    } else if (c == '?') {
      if (q == npos) q = i;
    } else if (q == npos && semi == npos) {
      semi = i;
    }
  }
  if (!u.is_sip()) return u;  // other schemes (tel:, urn:) are opaque to routing

  const std::size_t end = q == npos ? rest.size() : q;
  if (q != npos) u.headers = rest.substr(q + 1);
  std::size_t host_start = 0;
  if (at != npos) {
    auto userinfo = rest.substr(0, at);
    if (auto pc = userinfo.find(':'); pc != npos) {
      u.user = userinfo.substr(0, pc);
      u.password = userinfo.substr(pc + 1);
    } else {
      u.user = userinfo;
    }
    if (u.user.empty()) return Error{Errc::bad_uri, "empty user part"};
    host_start = at + 1;
  }
  const std::size_t host_end = semi == npos ? end : semi;
  if (semi != npos) u.params = rest.substr(semi, end - semi);
  auto hp = parse_host_port(rest.substr(host_start, host_end - host_start));
  if (!hp) return hp.error();
  u.host = hp->host;
  u.port = hp->port;
  return u;
}

Result<NameAddr> parse_name_addr(std::string_view text) {
  NameAddr na;
  text = trim(text);
  auto lt = std::string_view::npos;
  // A display name is a quoted string or tokens before '<'.
  std::size_t i = 0;
  if (!text.empty() && text.front() == '"') {
    for (i = 1; i < text.size() && text[i] != '"'; ++i)
      if (text[i] == '\\') ++i;
    if (i >= text.size()) return Error{Errc::bad_header, "unterminated display name"};
    na.display = text.substr(0, i + 1);
    lt = text.find('<', i + 1);
    if (lt == std::string_view::npos) return Error{Errc::bad_header, "quoted display name without <URI>"};
    if (!trim(text.substr(i + 1, lt - i - 1)).empty()) return Error{Errc::bad_header, "garbage after display name"};
  } else {
    lt = text.find('<');
    // An unquoted display name is tokens and whitespace only (RFC 3261 25.1);
    // "Bell, Alexander <sip:..>" is invalid (RFC 4475 3.1.2.15).
    if (lt != std::string_view::npos)
      for (char c : text.substr(0, lt))
        if (!is_token_char(c) && !is_ws(c)) return Error{Errc::bad_header, "display name must be quoted"};
  }
  if (lt != std::string_view::npos) {
    auto gt = text.find('>', lt);
    if (gt == std::string_view::npos) return Error{Errc::bad_header, "unterminated <URI>"};
    if (na.display.empty()) na.display = trim(text.substr(0, lt));
    na.uri_text = trim(text.substr(lt + 1, gt - lt - 1));  // liberal: RFC 4475 3.1.2.14
    na.params = trim(text.substr(gt + 1));
    if (!na.params.empty() && na.params.front() != ';') return Error{Errc::bad_header, "garbage after <URI>"};
  } else {
    auto semi = text.find(';');
    na.uri_text = trim(text.substr(0, semi));
    if (semi != std::string_view::npos) na.params = text.substr(semi);
  }
  // Header parameters never contain an unquoted ',' or '<': that is a second
  // value in a single-valued header (e.g. two From values).
  bool quoted = false;
  for (char c : na.params) {
    if (c == '"') quoted = !quoted;
    else if (!quoted && (c == ',' || c == '<')) return Error{Errc::bad_header, "more than one name-addr value"};
  }
  auto uri = parse_uri(na.uri_text);
  if (!uri) return uri.error();
  na.uri = *uri;
  return na;
}

Result<Via> parse_via(std::string_view element) {
  // sent-protocol LWS sent-by *( SEMI via-params ); LWS may appear around '/'.
  Via v;
  std::size_t i = 0;
  auto skip_ws = [&] {
    while (i < element.size() && is_ws(element[i])) ++i;
  };
  auto read_token = [&] {
    std::size_t start = i;
    while (i < element.size() && is_token_char(element[i])) ++i;
    return element.substr(start, i - start);
  };
  auto expect_slash = [&] {
    skip_ws();
    if (i >= element.size() || element[i] != '/') return false;
    ++i;
    skip_ws();
    return true;
  };
  skip_ws();
  auto name = read_token();
  if (!iequals(name, "SIP") || !expect_slash()) return Error{Errc::bad_via, "Via protocol is not SIP"};
  auto version = read_token();
  if (version != "2.0" || !expect_slash()) return Error{Errc::bad_via, "Via version is not 2.0"};
  v.transport = read_token();
  if (v.transport.empty()) return Error{Errc::bad_via, "Via without transport"};
  std::size_t before_ws = i;
  skip_ws();
  if (i == before_ws) return Error{Errc::bad_via, "no space before Via sent-by"};
  // sent-by = host [ COLON port ], with optional whitespace around the colon.
  std::size_t start = i;
  if (i < element.size() && element[i] == '[') {
    while (i < element.size() && element[i] != ']') ++i;
    if (i < element.size()) ++i;
  } else {
    while (i < element.size() && element[i] != ';' && element[i] != ':' && !is_ws(element[i])) ++i;
  }
  auto host_text = element.substr(start, i - start);
  std::size_t sent_by_end = i;
  skip_ws();
  std::string_view port_text;
  if (i < element.size() && element[i] == ':') {
    ++i;
    skip_ws();
    std::size_t port_start = i;
    while (i < element.size() && element[i] >= '0' && element[i] <= '9') ++i;
    port_text = element.substr(port_start, i - port_start);
    auto port = parse_uint<std::uint16_t>(port_text);
    if (!port || *port == 0) return Error{Errc::bad_via, "Via port out of range"};
    v.port = *port;
    sent_by_end = i;
  }
  v.sent_by = element.substr(start, sent_by_end - start);
  auto hp = parse_host_port(host_text);
  if (!hp || hp->port != 0) return Error{Errc::bad_via, "malformed Via sent-by"};
  v.host = hp->host;
  skip_ws();
  v.params = trim(element.substr(i));
  if (!v.params.empty() && v.params.front() != ';') return Error{Errc::bad_via, "garbage after Via sent-by"};
  // One pass over the parameters: every one needs a name (RFC 4475 3.1.2.1:
  // ";;,;,," is invalid), and branch, received and rport are picked up on the
  // way (Vias are read several times per message: a second scan costs).
  bool branch_seen = false, received_seen = false;
  // Without a quote every ';' ends a parameter, found by memchr rather than byte by byte.
  const bool quoted = v.params.find('"') != std::string_view::npos;
  std::size_t p = 0;
  while (p < v.params.size()) {
    // v.params starts with ';' and p sits on one here.
    std::size_t first = p + 1;
    while (first < v.params.size() && is_ws(v.params[first])) ++first;
    if (first >= v.params.size() || !is_token_char(v.params[first])) return Error{Errc::bad_via, "empty Via parameter"};
    // To the next ';' outside a quoted string (a backslash escapes inside one).
    std::size_t end = quoted ? first : std::min(v.params.find(';', first), v.params.size());
    while (quoted && end < v.params.size()) {
      while (end < v.params.size() && !kParamEnd.has(v.params[end])) ++end;
      if (end >= v.params.size() || v.params[end] == ';') break;
      for (++end; end < v.params.size() && v.params[end] != '"'; ++end)
        if (v.params[end] == '\\') ++end;
      if (end < v.params.size()) ++end;
    }
    auto param = v.params.substr(first, std::min(end, v.params.size()) - first);
    auto eq = param.find('=');
    auto param_name = trim(param.substr(0, eq));
    auto value = eq == std::string_view::npos ? std::string_view{} : trim(param.substr(eq + 1));
    // The first occurrence counts, as find_param reads it.
    if (!branch_seen && iequals(param_name, "branch")) {
      branch_seen = true;
      v.branch = value;
    } else if (!received_seen && iequals(param_name, "received")) {
      received_seen = true;
      v.received = value;
    } else if (!v.has_rport && iequals(param_name, "rport")) {
      v.has_rport = true;
      v.rport = value;
    }
    p = end;
  }
  return v;
}

}  // namespace sw::sip
