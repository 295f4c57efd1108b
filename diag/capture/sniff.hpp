#pragma once
// What a payload or a line of text is, from its first bytes: a SIP start line,
// or a TLS/DTLS record. Shared by the pcap path (UDP datagrams, TCP streams)
// and the text-trace reader, so they recognise SIP the same way.
#include <cstddef>
#include <string_view>

namespace sw::capture {

// A start line longer than this is not looked at as one.
inline constexpr std::size_t kMaxStartLine = 1024;

// `METHOD SP absolute-uri SP SIP/2.0` or `SIP/2.0 NNN reason` (one line, without
// its line break). Trailing blanks, common in pasted traces, are tolerated.
bool is_sip_start_line(std::string_view line);
// True when `bytes` starts with a SIP start line ended by a line break.
bool starts_with_sip_start_line(std::string_view bytes);
// True when `bytes` starts like a TLS or DTLS record.
bool starts_like_tls(std::string_view bytes);

}  // namespace sw::capture
