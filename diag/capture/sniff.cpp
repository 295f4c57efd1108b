#include "sniff.hpp"

#include "proxy/sip/text.hpp"

namespace sw::capture {
namespace {

constexpr std::string_view kVersion = "SIP/2.0";

}  // namespace

bool is_sip_start_line(std::string_view line) {
  while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) line.remove_suffix(1);
  if (line.size() > kVersion.size() && sip::iequals(line.substr(0, kVersion.size()), kVersion) &&
      line[kVersion.size()] == ' ') {
    auto code = line.substr(kVersion.size() + 1, 3);
    auto status = sip::parse_uint<unsigned>(code);
    auto after = kVersion.size() + 4;
    return code.size() == 3 && status && *status >= 100 && *status <= 699 &&
           (line.size() == after || line[after] == ' ');
  }
  auto sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return false;
  auto sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return false;
  auto uri = line.substr(sp1 + 1, sp2 - sp1 - 1);
  // Every Request-URI is absolute (sip:, sips:, tel:): without a colon it is prose.
  return sip::is_token(line.substr(0, sp1)) && uri.find(':') != std::string_view::npos &&
         sip::iequals(line.substr(sp2 + 1), kVersion);
}

bool starts_with_sip_start_line(std::string_view bytes) {
  auto eol = bytes.substr(0, kMaxStartLine).find('\n');
  return eol != std::string_view::npos && is_sip_start_line(bytes.substr(0, eol));
}

bool starts_like_tls(std::string_view bytes) {
  if (bytes.size() < 3) return false;
  auto type = static_cast<std::uint8_t>(bytes[0]);
  auto major = static_cast<std::uint8_t>(bytes[1]);
  // Record types 20-23 (change_cipher_spec, alert, handshake, application_data);
  // version 3.x for TLS, 254.x for DTLS.
  return type >= 20 && type <= 23 && (major == 3 || major == 254);
}

}  // namespace sw::capture
