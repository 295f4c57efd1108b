#pragma once
// Lab seals: what one sipwitness sent, authenticated with the lab key, so that
// the sipwitness on the far side of a device under test can tell which fields
// the device rewrote. Pure: bytes in, a header line or a list of changes out.
//
// The seal is one header, added last to the header block of a message as it
// is sent:
//   X-Sipwitness-Seal: v=1;id=<16 hex>[;probe=1];f=<field>:<mac>[:<value>],...;mac=<mac>
// Each field (Request-URI, each Via, Contact, From, To, Call-ID, CSeq, every
// Authorization / Proxy-Authorization / WWW- / Proxy-Authenticate and each of
// their digest parameters, SDP o=/c=/m=/a=rtcp lines, Content-Length and a
// body digest) gets a truncated HMAC of (id, name, value) with the lab key;
// values up to kCarriedValueBytes (kCarriedAuthBytes for a whole credentials or
// challenge header, the field that matters most) travel along in base64url, so the receiver
// can show what was sent, not only that it changed. base64url also keeps an
// ALG from finding (and rewriting) addresses inside the seal. The final mac
// covers the whole seal, so a device can neither forge nor edit it.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/sip/message.hpp"

namespace sw::diag {

inline constexpr std::string_view kSealHeader = "X-Sipwitness-Seal";
inline constexpr std::size_t kCarriedValueBytes = 200;
inline constexpr std::size_t kCarriedAuthBytes = 1024;

// One sealed field: a token-safe name ("ruri", "via.0", "authorization.0.uri",
// "sdp.c.0") and the exact bytes it covers.
struct SealField {
  std::string name;
  std::string value;
};

// The fields of a message, in message order. The seal header itself is skipped.
std::vector<SealField> seal_fields(const sip::Message& m);
// "Request-URI", "Via", "Via #2", "Authorization uri=", "SDP c=" for a field name.
std::string field_label(std::string_view name);
// Whether a field is part of the digest exchange (a credentials or challenge header).
bool is_auth_field(std::string_view name);

// The complete header line (with CRLF) sealing m, the message as it will be sent.
// probe marks a `sipwitness probe` request, which the far side answers itself.
std::string make_seal(const sip::Message& m, std::string_view key, std::string_view id, bool probe = false);
// The bytes of m with its seal line inserted at the end of the header block.
std::string add_seal(const sip::Message& m, std::string_view key, std::string_view id, bool probe = false);

struct FieldChange {
  std::string name;     // field name (see SealField)
  std::string label;    // field_label(name)
  std::string sent;     // "(absent)" when the device added it; "(not carried)" when too long to travel
  std::string arrived;  // "(absent)" when the device removed it
};

struct SealCheck {
  enum class Status : std::uint8_t {
    absent,     // no seal: stripped on the way, or never sealed
    intact,     // every field arrived as sent
    rewritten,  // changes lists what the device changed
    invalid,    // the seal does not verify: another lab key, or the device edited the seal
  };
  Status status = Status::absent;
  std::string id;
  bool probe = false;   // a `sipwitness probe` request (what the seal says, even when invalid)
  std::string detail;  // why a seal is invalid
  std::vector<FieldChange> changes;
  const sip::Header* header = nullptr;  // the seal line (to strip before forwarding)

  bool auth_changed() const;
};

// Checks m (as it arrived) against its seal.
SealCheck check_seal(const sip::Message& m, std::string_view key);
// The bytes of m without its seal line (m.raw when it has none).
std::string strip_seal(const sip::Message& m, const SealCheck& check);

std::string_view to_string(SealCheck::Status s);

// What the far side of a `sipwitness probe` answers with, as the body of its response:
// {"seal":"rewritten","id":"...","detail":"","changes":[{"name":"via.0","field":"Via","sent":"...","arrived":"..."}]}
inline constexpr std::string_view kSealReportType = "application/x-sipwitness-seal-report+json";
std::string seal_report_json(const SealCheck& check);
// nullopt when the text is not such a report (header stays null).
std::optional<SealCheck> parse_seal_report(std::string_view json);

}  // namespace sw::diag
