#pragma once
// The SIP message model: one buffer owned by the caller, and views into it.
// parse() is a pure function of bytes (no I/O, clocks or logging).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "header.hpp"
#include "result.hpp"
#include "uri.hpp"

namespace sw::sip {

struct ParseLimits {
  std::size_t max_message_bytes = 65535;
  std::size_t max_headers = 128;
  std::size_t max_line_bytes = 8192;
};

struct Header {
  HeaderId id;
  std::string_view name;   // as written (may be compact)
  std::string_view value;  // trimmed; folded lines stay inside the view
  std::uint32_t begin;     // offset of the header line in the message
  std::uint32_t end;       // offset just past its final line break
};

// How the message was delimited, which decides the Content-Length rules
// (RFC 3261 18.3): mandatory on streams, optional on datagrams.
enum class Framing : std::uint8_t { datagram, stream };

struct Message {
  std::string_view raw;  // the whole message, start line to the end of the body
  bool is_request = false;
  std::string_view method;       // requests
  std::string_view request_uri;  // requests
  Uri ruri;                      // requests: request_uri, parsed (parse checks it anyway)
  int status = 0;                // responses
  std::string_view reason;       // responses
  std::vector<Header> headers;
  std::uint32_t headers_end = 0;  // offset of the empty line ending the header block
  std::string_view body;
  std::uint32_t cseq_number = 0;
  std::string_view cseq_method;
  // Kept from parse's own checks: routing, the diagnosis and the hints read
  // them for every message, and parsing them again each time cost a third of
  // the relay's instructions.
  std::string_view top_via_element;  // the first Via element, as written
  Via via;                           // that element, parsed
  // The second Via element ("" when there is one Via): where a response goes
  // once our Via is popped.
  std::string_view second_via_element;
  Via second_via;
  NameAddr from, to;                 // the From and To values, parsed
  std::string_view from_tag, to_tag; // their "tag" parameters, "" when absent

  const Header* first(HeaderId id) const;
  std::size_t count(HeaderId id) const;
  std::string_view value(HeaderId id) const;  // first value or ""
  std::uint32_t offset_of(std::string_view inner) const {
    return static_cast<std::uint32_t>(inner.data() - raw.data());
  }
};

// Parses one message. For datagrams, bytes past Content-Length are ignored and a
// Content-Length beyond the datagram is an error; for streams, bytes must be
// exactly one framed message (see frame_stream).
Result<Message> parse(std::string_view bytes, Framing framing, const ParseLimits& limits = {});

// Finds the length of the first complete message in a stream buffer (leading
// CRLF keep-alives must be consumed first). Errc::incomplete means "need more bytes".
Result<std::size_t> frame_stream(std::string_view buffer, const ParseLimits& limits = {});

// Value of the "tag" parameter of a From/To header value, or "" (a parsed
// Message has them in from_tag and to_tag).
std::string_view tag_of(std::string_view from_or_to);

// The first element of the first Via header (a Via line may carry several,
// comma-separated), or "".
inline std::string_view top_via(const Message& m) { return m.top_via_element; }

// The Content-Type's media type without parameters ("application/sdp"), or "".
std::string_view media_type(const Message& m);

}  // namespace sw::sip

namespace sw::sip {

// What can still be read from bytes that failed to parse, to answer them with a
// 400 (RFC 3261 8.2.6 needs Via, From, To, Call-ID and CSeq copied). Responses
// and ACKs are never answered, so they come back with is_request false / the method.
struct Salvage {
  bool is_request = false;
  std::string_view method;
  std::vector<std::pair<HeaderId, std::string_view>> headers;  // Via, From, To, Call-ID, CSeq values
  bool has_via() const {
    for (const auto& h : headers)
      if (h.first == HeaderId::Via) return true;
    return false;
  }
};
Salvage salvage(std::string_view bytes, const ParseLimits& limits = {});

}  // namespace sw::sip
