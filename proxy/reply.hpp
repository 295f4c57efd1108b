#pragma once
// Responses sipwitness generates itself (RFC 3261 8.2.6): 400, 482, 483, 503...
#include <string>
#include <string_view>

#include "diag/seal.hpp"
#include "proxy/address.hpp"
#include "proxy/sip/message.hpp"

namespace sw::proxy {

// The To tag of our own responses: a stable function of the request (and a
// per-process secret), so retransmissions get the same tag and the ACK for our
// response can be recognised without keeping state.
std::string local_tag(const sip::Message& request, std::string_view secret);
std::string local_tag(std::string_view call_id, std::string_view from_tag, std::string_view secret);

// Builds a response to a parsed request. warning goes into a Warning header (399);
// extra_headers ("Name: value\r\n" lines, e.g. Proxy-Authenticate) are added as given; a body
// needs its Content-Type among them.
std::string make_reply(const sip::Message& request, const Address& source, int status, std::string_view reason,
                       std::string_view warning, std::string_view secret, std::string_view extra_headers = {},
                       std::string_view body = {});

// The outer lab side's answer to a `sipwitness probe` request: 200 (488 to an
// INVITE, so no dialog or media is set up) carrying the seal check of the
// request as it arrived (diag::seal_report_json). Unsealed: the sender seals it.
std::string make_probe_answer(const sip::Message& request, const Address& source, const diag::SealCheck& check,
                              std::string_view secret);

// RFC 3261 17.1.1.3: the ACK a client transaction sends for a non-2xx final
// response to an INVITE; here for an upstream's 503 that sipwitness answers
// itself by failing over. Our Via (the response's top one) only, the INVITE's
// Request-URI and Route set, the response's From, To, Call-ID and CSeq number.
std::string make_ack(const sip::Message& invite_sent, const sip::Message& response);

// Builds a response from what could be salvaged of a malformed request; "" when
// it cannot be answered (no Via, a response, or an ACK).
std::string make_reply(const sip::Salvage& salvaged, const Address& source, int status, std::string_view reason,
                       std::string_view warning, std::string_view secret);

}  // namespace sw::proxy
