#include "message.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <optional>

#include "text.hpp"
#include "uri.hpp"

namespace sw::sip {
namespace {

// Finds the next line break at or after pos. Lines end in CRLF; a bare LF is
// accepted too (RFC 3261 7: implementations should be liberal), bare CR is not.
std::size_t line_end(std::string_view s, std::size_t pos, std::size_t* break_len) {
  auto lf = s.find('\n', pos);
  if (lf == std::string_view::npos) return lf;
  *break_len = (lf > pos && s[lf - 1] == '\r') ? 2 : 1;
  return lf + 1 - *break_len;
}

// Walks the header block one logical header at a time (continuation lines
// folded in), so parse, frame_stream and salvage agree on folding and line ends.
class HeaderWalker {
 public:
  enum class Step { header, end, incomplete, bad_line };
  struct Raw {
    std::string_view name;
    std::string_view value;  // trimmed, folds inside
    std::size_t begin = 0, end = 0;
  };

  HeaderWalker(std::string_view bytes, std::size_t pos, std::size_t max_line)
      : bytes_(bytes), pos_(pos), max_line_(max_line) {}

  // On bad_line the offending line has been consumed and error_ says why.
  Step next(Raw& out) {
    std::size_t brk = 0;
    auto end = line_end(bytes_, pos_, &brk);
    if (end == std::string_view::npos) return long_or_incomplete(bytes_.size() - pos_);
    if (end == pos_) {
      headers_end_ = pos_;
      pos_ = end + brk;
      return Step::end;
    }
    std::size_t begin = pos_;
    pos_ = end + brk;
    if (end - begin > max_line_) return bad(Errc::line_too_long, "header line over length limit");
    auto line = bytes_.substr(begin, end - begin);
    if (line.front() == ' ' || line.front() == '\t') return bad(Errc::bad_header, "continuation line before any header");
    // The name is read as a token up to the colon, in one pass over its bytes.
    std::size_t name_end = 0;
    while (name_end < line.size() && is_token_char(line[name_end])) ++name_end;
    std::size_t colon = name_end;
    while (colon < line.size() && (line[colon] == ' ' || line[colon] == '\t')) ++colon;
    if (colon >= line.size() || line[colon] != ':') {
      if (line.find(':') == std::string_view::npos) return bad(Errc::bad_header, "header line without colon");
      return bad(Errc::bad_header, "header name is not a token");
    }
    if (name_end == 0) return bad(Errc::bad_header, "header name is not a token");
    auto name = line.substr(0, name_end);
    std::size_t value_end = end;
    // RFC 3261 7.3.1: a line starting with whitespace continues the header.
    while (pos_ < bytes_.size() && (bytes_[pos_] == ' ' || bytes_[pos_] == '\t')) {
      auto cont_end = line_end(bytes_, pos_, &brk);
      if (cont_end == std::string_view::npos) return long_or_incomplete(bytes_.size() - begin);
      if (cont_end - pos_ > max_line_) return bad(Errc::line_too_long, "header line over length limit");
      value_end = cont_end;
      pos_ = cont_end + brk;
    }
    out.name = name;
    out.value = trim(bytes_.substr(begin + colon + 1, value_end - begin - colon - 1));
    out.begin = begin;
    out.end = pos_;
    // At the end of the bytes the next line could still be a continuation; the
    // header is filled in anyway for salvage.
    return pos_ >= bytes_.size() ? Step::incomplete : Step::header;
  }

  std::size_t position() const { return pos_; }
  std::size_t headers_end() const { return headers_end_; }
  const Error& error() const { return error_; }

 private:
  Step bad(Errc code, std::string_view detail) {
    error_ = Error{code, detail};
    return Step::bad_line;
  }
  // An unterminated line: too long already (consumed to the end, so a caller
  // that skips bad lines moves on), or incomplete.
  Step long_or_incomplete(std::size_t pending) {
    if (pending <= max_line_) return Step::incomplete;
    pos_ = bytes_.size();
    return bad(Errc::line_too_long, "header line over length limit");
  }

  std::string_view bytes_;
  std::size_t pos_;
  std::size_t max_line_;
  std::size_t headers_end_ = 0;
  Error error_{Errc::bad_header, ""};
};

bool is_sip_version(std::string_view v) { return v == "SIP/2.0" || iequals(v, "SIP/2.0"); }

bool is_other_sip_version(std::string_view v) {
  return v.size() > 4 && iequals(v.substr(0, 4), "SIP/");
}

Result<bool> parse_request_line(std::string_view line, Message& m) {
  // RFC 3261 25.1: Method SP Request-URI SP SIP-Version, single spaces, no
  // trailing whitespace (RFC 4475 3.1.2.7 lwsstart and 3.1.2.8 trws are invalid).
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Error{Errc::bad_start_line, "no space in request line"};
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return Error{Errc::bad_start_line, "request line has two fields"};
  m.method = line.substr(0, sp1);
  m.request_uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  if (!is_token(m.method)) return Error{Errc::bad_start_line, "method is not a token"};
  if (m.request_uri.empty()) return Error{Errc::bad_start_line, "empty Request-URI"};
  if (version.find_first_of(" \t") != std::string_view::npos)
    return Error{Errc::bad_start_line, "extra whitespace in request line"};
  if (!is_sip_version(version)) {
    if (is_other_sip_version(version)) return Error{Errc::bad_version, "unsupported SIP version"};
    return Error{Errc::bad_start_line, "bad SIP version in request line"};
  }
  if (m.request_uri.front() == '<') return Error{Errc::bad_uri, "Request-URI enclosed in <>"};
  if (m.request_uri.find('\t') != std::string_view::npos)
    return Error{Errc::bad_uri, "whitespace in Request-URI"};
  auto uri = parse_uri(m.request_uri);
  if (!uri) return Error{Errc::bad_uri, "malformed Request-URI"};
  m.ruri = *uri;
  m.is_request = true;
  return true;
}

Result<bool> parse_status_line(std::string_view line, Message& m) {
  // SIP-Version SP Status-Code SP Reason-Phrase (reason may be empty).
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return Error{Errc::bad_start_line, "no space in status line"};
  if (!is_sip_version(line.substr(0, sp1))) {
    if (is_other_sip_version(line.substr(0, sp1)))
      return Error{Errc::bad_version, "unsupported SIP version"};
    return Error{Errc::bad_start_line, "bad SIP version in status line"};
  }
  auto rest = line.substr(sp1 + 1);
  auto sp2 = rest.find(' ');
  auto code = rest.substr(0, sp2);
  auto status = parse_uint<unsigned>(code);
  if (code.size() != 3 || !status || *status < 100 || *status > 699)
    return Error{Errc::bad_start_line, "status code out of range"};
  m.status = static_cast<int>(*status);
  m.reason = sp2 == std::string_view::npos ? std::string_view{} : rest.substr(sp2 + 1);
  m.is_request = false;
  return true;
}

bool is_single_valued(HeaderId id) {
  switch (id) {
    case HeaderId::CallId:
    case HeaderId::From:
    case HeaderId::To:
    case HeaderId::CSeq:
    case HeaderId::MaxForwards:
    case HeaderId::ContentLength:
    case HeaderId::ContentType:
    case HeaderId::Expires:
      return true;
    default:
      return false;
  }
}

Result<bool> check_headers(Message& m) {
  std::array<std::uint8_t, static_cast<std::size_t>(HeaderId::Count_)> seen{};
  for (const auto& h : m.headers) {
    auto& n = seen[static_cast<std::size_t>(h.id)];
    if (n < 255) ++n;
    if (n > 1 && is_single_valued(h.id)) return Error{Errc::duplicate_header, "single-valued header repeated"};
  }
  auto has = [&](HeaderId id) { return seen[static_cast<std::size_t>(id)] > 0; };
  if (!has(HeaderId::Via)) return Error{Errc::missing_header, "missing Via"};
  if (!has(HeaderId::From)) return Error{Errc::missing_header, "missing From"};
  if (!has(HeaderId::To)) return Error{Errc::missing_header, "missing To"};
  if (!has(HeaderId::CallId)) return Error{Errc::missing_header, "missing Call-ID"};
  if (!has(HeaderId::CSeq)) return Error{Errc::missing_header, "missing CSeq"};
  if (m.value(HeaderId::CallId).empty()) return Error{Errc::bad_header, "empty Call-ID"};
  auto from = parse_name_addr(m.value(HeaderId::From));
  if (!from) return Error{Errc::bad_header, "malformed From"};
  auto to = parse_name_addr(m.value(HeaderId::To));
  if (!to) return Error{Errc::bad_header, "malformed To"};
  m.from = *from;
  m.to = *to;
  m.from_tag = find_param(from->params, "tag").value_or(std::string_view{});
  m.to_tag = find_param(to->params, "tag").value_or(std::string_view{});
  // Every Via element must be well formed: responses are routed by them.
  for (const auto& h : m.headers) {
    if (h.id != HeaderId::Via) continue;
    bool vias_ok = true, any = false;
    bool balanced = for_each_list_item(h.value, [&](std::string_view item) {
      any = true;
      auto via = parse_via(item);
      vias_ok = via.ok();
      if (vias_ok && m.top_via_element.empty()) {
        m.top_via_element = item;
        m.via = *via;
      } else if (vias_ok && m.second_via_element.empty()) {
        m.second_via_element = item;
        m.second_via = *via;
      }
      return vias_ok;
    });
    if (!balanced || !vias_ok || !any) return Error{Errc::bad_via, "malformed Via"};
  }

  // CSeq: 32-bit number, LWS, method (RFC 3261 8.1.1.5 and 20.16).
  auto cseq = m.value(HeaderId::CSeq);
  std::size_t i = 0;
  while (i < cseq.size() && cseq[i] >= '0' && cseq[i] <= '9') ++i;
  auto number = parse_uint<std::uint32_t>(cseq.substr(0, i));
  if (!number) return Error{Errc::bad_value, "CSeq number missing or over 2^32-1"};
  auto method = trim(cseq.substr(i));
  if (method.size() == cseq.size() - i || !is_token(method))
    return Error{Errc::bad_header, "CSeq method malformed"};
  m.cseq_number = *number;
  m.cseq_method = method;
  if (m.is_request && method != m.method) return Error{Errc::cseq_mismatch, "CSeq method differs from request method"};

  if (const auto* mf = m.first(HeaderId::MaxForwards)) {
    auto v = parse_uint<unsigned>(mf->value);
    if (!v || *v > 255) return Error{Errc::bad_value, "Max-Forwards not in 0..255"};
  }
  if (const auto* ex = m.first(HeaderId::Expires)) {
    if (!parse_uint<std::uint32_t>(ex->value)) return Error{Errc::bad_value, "Expires not in 0..2^32-1"};
  }
  return true;
}

}  // namespace

const Header* Message::first(HeaderId id) const {
  for (const auto& h : headers)
    if (h.id == id) return &h;
  return nullptr;
}

std::size_t Message::count(HeaderId id) const {
  return static_cast<std::size_t>(
      std::count_if(headers.begin(), headers.end(), [id](const Header& h) { return h.id == id; }));
}

std::string_view Message::value(HeaderId id) const {
  const auto* h = first(id);
  return h ? h->value : std::string_view{};
}

Result<Message> parse(std::string_view bytes, Framing framing, const ParseLimits& limits) {
  if (bytes.size() > limits.max_message_bytes) return Error{Errc::too_large, "message over size limit"};
  Message m;
  m.raw = bytes;
  m.headers.reserve(24);

  std::size_t brk = 0;
  auto first_end = line_end(bytes, 0, &brk);
  if (first_end == std::string_view::npos) return Error{Errc::bad_start_line, "no line break after start line"};
  if (first_end > limits.max_line_bytes) return Error{Errc::line_too_long, "start line over length limit"};
  auto start_line = bytes.substr(0, first_end);
  auto started = start_line.size() >= 4 && iequals(start_line.substr(0, 4), "SIP/")
                     ? parse_status_line(start_line, m)
                     : parse_request_line(start_line, m);
  if (!started) return started.error();

  HeaderWalker walker(bytes, first_end + brk, limits.max_line_bytes);
  HeaderWalker::Raw raw;
  for (;;) {
    auto step = walker.next(raw);
    if (step == HeaderWalker::Step::end) break;
    if (step == HeaderWalker::Step::incomplete)
      return Error{Errc::bad_header, "header block not terminated by an empty line"};
    if (step == HeaderWalker::Step::bad_line) return walker.error();
    if (m.headers.size() >= limits.max_headers) return Error{Errc::too_many_headers, "header count over limit"};
    m.headers.push_back(Header{header_id(raw.name), raw.name, raw.value, static_cast<std::uint32_t>(raw.begin),
                               static_cast<std::uint32_t>(raw.end)});
  }
  m.headers_end = static_cast<std::uint32_t>(walker.headers_end());
  std::size_t pos = walker.position();

  auto checked = check_headers(m);
  if (!checked) return checked.error();

  std::size_t available = bytes.size() - pos;
  const auto* cl = m.first(HeaderId::ContentLength);
  std::size_t body_len = available;
  if (cl) {
    auto v = parse_uint<std::uint32_t>(cl->value);
    if (!v) return Error{Errc::bad_content_length, "Content-Length is not a non-negative integer"};
    if (*v > available) return Error{Errc::bad_content_length, "Content-Length larger than the message"};
    body_len = *v;
  } else if (framing == Framing::stream) {
    return Error{Errc::bad_content_length, "Content-Length missing on a stream transport"};
  }
  m.body = bytes.substr(pos, body_len);
  m.raw = bytes.substr(0, pos + body_len);
  return m;
}

Result<std::size_t> frame_stream(std::string_view buffer, const ParseLimits& limits) {
  std::size_t brk = 0;
  auto first_end = line_end(buffer, 0, &brk);
  if (first_end == std::string_view::npos) {
    if (buffer.size() > limits.max_line_bytes) return Error{Errc::line_too_long, "start line over length limit"};
    return Error{Errc::incomplete, "need more bytes"};
  }
  HeaderWalker walker(buffer, first_end + brk, limits.max_line_bytes);
  HeaderWalker::Raw raw;
  std::optional<std::uint32_t> content_length;
  for (;;) {
    auto step = walker.next(raw);
    if (step == HeaderWalker::Step::end) break;
    if (step == HeaderWalker::Step::incomplete) {
      if (buffer.size() > limits.max_message_bytes) return Error{Errc::too_large, "header block over size limit"};
      return Error{Errc::incomplete, "need more bytes"};
    }
    if (step == HeaderWalker::Step::bad_line) return walker.error();
    if (header_id(raw.name) != HeaderId::ContentLength) continue;
    auto v = parse_uint<std::uint32_t>(raw.value);
    if (!v) return Error{Errc::bad_content_length, "Content-Length is not a non-negative integer"};
    if (content_length && *content_length != *v) return Error{Errc::bad_content_length, "conflicting Content-Length headers"};
    content_length = *v;
  }
  if (!content_length) return Error{Errc::bad_content_length, "Content-Length missing on a stream transport"};
  std::size_t total = walker.position() + *content_length;
  if (total > limits.max_message_bytes) return Error{Errc::too_large, "message over size limit"};
  if (buffer.size() < total) return Error{Errc::incomplete, "need more bytes"};
  return total;
}

std::string_view media_type(const Message& m) {
  auto type = m.value(HeaderId::ContentType);
  return trim(type.substr(0, type.find(';')));
}

std::string_view tag_of(std::string_view from_or_to) {
  auto na = parse_name_addr(from_or_to);
  if (!na) return {};
  auto tag = find_param(na->params, "tag");
  return tag ? *tag : std::string_view{};
}

}  // namespace sw::sip

namespace sw::sip {

Salvage salvage(std::string_view bytes, const ParseLimits& limits) {
  Salvage s;
  bytes = bytes.substr(0, std::min(bytes.size(), limits.max_message_bytes));
  std::size_t brk = 0;
  auto first_end = line_end(bytes, 0, &brk);
  if (first_end == std::string_view::npos || first_end > limits.max_line_bytes) return s;
  auto start = bytes.substr(0, first_end);
  auto sp = start.find(' ');
  if (sp == std::string_view::npos || !is_token(start.substr(0, sp)) || iequals(start.substr(0, 4), "SIP/")) return s;
  s.is_request = true;
  s.method = start.substr(0, sp);
  HeaderWalker walker(bytes, first_end + brk, limits.max_line_bytes);
  HeaderWalker::Raw raw;
  while (s.headers.size() < 32) {
    raw = {};
    auto step = walker.next(raw);
    if (step == HeaderWalker::Step::end) break;
    if (step == HeaderWalker::Step::bad_line) continue;  // skip what cannot be read, keep the rest
    bool last = step == HeaderWalker::Step::incomplete;
    if (last && raw.end != walker.position()) break;
    auto id = header_id(raw.name);
    bool via_has_element = false;
    if (id == HeaderId::Via) {
      bool balanced = for_each_list_item(raw.value, [&](std::string_view) {
        via_has_element = true;
        return false;
      });
      via_has_element = via_has_element && balanced;
    }
    // A Via without an element is not one a response could follow.
    if ((id == HeaderId::Via && via_has_element) || id == HeaderId::From || id == HeaderId::To ||
        id == HeaderId::CallId || id == HeaderId::CSeq)
      s.headers.emplace_back(id, raw.value);
    if (last) break;
  }
  return s;
}

}  // namespace sw::sip
