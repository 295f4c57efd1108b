#pragma once
// `sipwitness probe`: the active ALG test. A NAT ALG rewrites only the address
// and port of the connection it tracks, so the probe writes its own local
// address (as the kernel sees it) into every field an ALG rewrites, seals each
// request with the lab key and sends it to a sipwitness with lab.role outer on
// the far side of the device. The outer answers itself with the seal check of
// what arrived, and seals its answer, so both directions are measured.
//
// The builders, the evaluation of an answer and the output formats are pure;
// run_probe() does the (blocking, bounded) socket work.
#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/address.hpp"
#include "proxy/sip/message.hpp"

namespace sw::proxy {

// The probe's side of one transport run: what the kernel chose for us.
struct ProbeEndpoints {
  Transport transport = Transport::udp;
  Address local;   // getsockname() of the connected socket
  std::uint16_t media_port = 0;  // m=audio port (RTCP one above); see media_port_for
};

// An even RTP port next to the signalling port whose RTCP port (one above)
// collides with neither the signalling port nor the range end.
std::uint16_t media_port_for(std::uint16_t signalling_port);

// The random parts of one request, passed in so that building stays pure.
struct ProbeTokens {
  std::string branch;     // Via branch, with the RFC 3261 magic cookie
  std::string call_id;    // the part before '@' (the host part is our address)
  std::string from_tag;
  std::string nonce;      // the Authorization nonce (REGISTER)
  std::uint32_t cseq = 1;
  std::uint64_t sdp_session = 1;  // o= session id and version (INVITE)
};

// The methods sent on each transport, in this order.
inline constexpr std::string_view kProbeMethods[] = {"REGISTER", "INVITE", "OPTIONS"};

// The unsealed text of a probe request: REGISTER (Authorization, Expires: 0),
// INVITE (SDP offer) or OPTIONS; our address in the Request-URI, Via, Contact,
// From, To, Call-ID, the digest uri= and the SDP o=/c=/m=/a=rtcp lines.
std::string build_probe_request(const ProbeEndpoints& endpoints, std::string_view method, const ProbeTokens& tokens);

// The ACK for a non-2xx final response to an INVITE (RFC 3261 17.1.1.3): the
// request's Request-URI, top Via, From and Call-ID, the response's To (with its
// tag), CSeq <number> ACK. Unsealed.
std::string build_probe_ack(const sip::Message& invite, const sip::Message& response);

// Whether response answers request: same top Via branch and CSeq method, and
// the same Call-ID before '@' (an ALG may rewrite the host part).
bool answers(const sip::Message& response, const sip::Message& request);

enum class ProbeDirection : std::uint8_t { there, back };
std::string_view to_string(ProbeDirection d);

struct ProbeFinding {
  Transport transport = Transport::udp;
  std::string message;  // "REGISTER" on the way there, "200 (REGISTER)" on the way back
  ProbeDirection direction = ProbeDirection::there;
  std::string field;    // a seal field label ("Via", "Authorization uri="), "X-Sipwitness-Seal" or "(message)"
  std::string sent;
  std::string arrived;
};

// What one request met: the far side's seal report (the response body) gives the
// changes on the way there, the response's own seal those on the way back.
// request is the sealed request as sent; response the final response as it arrived.
std::vector<ProbeFinding> findings_for(Transport transport, const sip::Message& request, const sip::Message& response,
                                       std::string_view key);

struct ProbeMessageResult {
  std::string method;
  bool sent = false;
  bool answered = false;
  int status = 0;     // of the final response
  std::string note;   // why there is no answer ("timed out", "port unreachable", ...)
  std::vector<ProbeFinding> findings;
};

struct ProbeTransportResult {
  Transport transport = Transport::udp;
  std::string target;  // host:port
  std::string local;   // host:port we sent from; "" when no socket got that far
  std::string error;   // why the run stopped early (connect failed, connection closed)
  std::vector<ProbeMessageResult> messages;

  bool any_answer() const;
};

// A request without an answer while others on the same transport were answered
// becomes a finding (a device that drops INVITEs); a transport with no answer at
// all says nothing about rewriting and stays without findings.
void add_unanswered_findings(ProbeTransportResult& result);

// 1: nothing answered on any transport; 3: findings; 0: nothing rewritten.
int probe_exit_code(const std::vector<ProbeTransportResult>& results);

// Human output: a block per transport ("probe udp 203.0.113.2:5060 from
// 10.77.1.2:40001"), a line per message and per change.
void format_probe_block(const ProbeTransportResult& result, std::ostream& out);
// "result: rewritten (exit 3)", "result: nothing rewritten (exit 0)", ...
std::string probe_summary(const std::vector<ProbeTransportResult>& results);
// Every block, then the summary line.
void format_probe_text(const std::vector<ProbeTransportResult>& results, std::ostream& out);
// One JSON object per finding:
// {"transport","message","direction","field","sent","arrived"}.
std::string probe_json_line(const ProbeFinding& finding);

enum class ProbeFormat : std::uint8_t { text, json };

struct ProbeOptions {
  std::string target_host;  // an IPv4 literal, or a name resolved to IPv4
  std::uint16_t target_port = 5060;
  std::vector<Transport> transports{Transport::udp, Transport::tcp};
  std::string key;          // the lab key bytes (config::load_lab_key)
  ProbeFormat format = ProbeFormat::text;
  std::chrono::milliseconds timeout{3000};  // per message
  std::string bind_ip;      // local address to send from; "" = the kernel's choice
};

// Runs the probe: results to out, problems to err. Returns the exit code
// (probe_exit_code, or 2 for unusable options). Every wait is bounded by the timeout.
int run_probe(const ProbeOptions& options, std::ostream& out, std::ostream& err);

}  // namespace sw::proxy
