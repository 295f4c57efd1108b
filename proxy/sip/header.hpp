#pragma once
#include <cstdint>
#include <string_view>

namespace sw::sip {

// Headers the proxy and diagnosis look at; everything else is Other and is
// still kept (and forwarded) byte for byte.
enum class HeaderId : std::uint8_t {
  Other,
  Via,
  From,
  To,
  CallId,
  CSeq,
  Contact,
  MaxForwards,
  Route,
  RecordRoute,
  Path,
  ContentLength,
  ContentType,
  ContentEncoding,
  Expires,
  Authorization,
  ProxyAuthorization,
  WwwAuthenticate,
  ProxyAuthenticate,
  ProxyRequire,
  Require,
  Supported,
  Subject,
  Event,
  AllowEvents,
  ReferTo,
  ReferredBy,
  SessionExpires,
  Identity,
  RejectContact,
  AcceptContact,
  RequestDisposition,
  UserAgent,
  Server,
  Count_,
};

// Maps a header name (full or compact form, any case) to its id.
HeaderId header_id(std::string_view name);

// The canonical full name, e.g. "Call-ID" for HeaderId::CallId ("" for Other).
std::string_view header_name(HeaderId id);

}  // namespace sw::sip
