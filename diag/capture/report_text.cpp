#include <utility>

#include "report.hpp"

namespace sw::capture {
namespace {

// "3 TLS packets" for non-zero counts only.
void add_count(std::vector<std::string>& parts, std::uint64_t n, const char* what) {
  if (n) parts.push_back(std::to_string(n) + " " + what);
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

}  // namespace

std::string format_text_verdict(const diag::Verdict& v) {
  std::string out = diag::iso8601_utc(v.ts) + "  " + std::string(diag::to_string(v.verdict)) + " (" +
                    std::string(diag::to_string(v.confidence)) + ")  " + v.method + " " +
                    (v.aor.empty() ? "-" : v.aor) + "  user=" + (v.user.empty() ? "-" : v.user) + "  from " +
                    (v.source.empty() ? "-" : v.source) + "  challenges=" + std::to_string(v.challenges) +
                    "  final=" + (v.final_status ? std::to_string(v.final_status) : std::string("none")) +
                    "  call-id=" + v.call_id;
  out = diag::printable(std::move(out)) + "\n";
  for (const auto& [key, value] : v.evidence)
    out += "    " + diag::printable(key + ": " + diag::evidence_text(value)) + "\n";
  out += "    hint: " + v.hint + "\n";
  return out;
}

std::string format_text_summary(const std::vector<InputSummary>& inputs, const AnalysisStats& stats) {
  std::string out;
  for (const auto& in : inputs) {
    const auto& s = in.outcome.stats;
    out += in.file + " (" + in.format + "): ";
    std::vector<std::string> read;
    if (in.format != "text") read.push_back(std::to_string(s.packets) + " packets");
    read.push_back(std::to_string(s.sip_messages) + " SIP messages");
    add_count(read, s.reassembled_datagrams, "datagrams rebuilt from fragments");
    out += join(read);
    std::vector<std::string> skipped;
    add_count(skipped, s.tls_packets, "TLS packets (encrypted)");
    add_count(skipped, s.non_sip, "non-SIP payloads");
    add_count(skipped, s.unsupported, "packets of other protocols");
    add_count(skipped, s.malformed, "malformed packets");
    add_count(skipped, s.incomplete_fragments, "datagrams missing fragments");
    add_count(skipped, s.tcp_gaps, "TCP gaps");
    add_count(skipped, s.tcp_incomplete, "TCP streams cut inside a message");
    add_count(skipped, s.unreadable_text, "unreadable text blocks");
    if (!skipped.empty()) out += "; not read: " + join(skipped);
    std::vector<std::string> repaired;
    add_count(repaired, s.tcp_retransmissions, "TCP retransmissions dropped");
    add_count(repaired, s.tcp_out_of_order, "out-of-order segments reordered");
    if (!repaired.empty()) out += "; " + join(repaired);
    out += "\n";
    if (in.outcome.error) out += "  error: " + in.outcome.error->describe() + "\n";
  }
  if (stats.unparsable) {
    out += std::to_string(stats.unparsable) + " messages did not parse";
    out += stats.parse_errors.empty() ? "\n" : ", first: " + stats.parse_errors.front() + "\n";
  }
  std::vector<std::string> kinds;
  for (const auto& [name, n] : stats.by_verdict) kinds.push_back(std::to_string(n) + " " + name);
  out += std::to_string(stats.verdicts) + (stats.verdicts == 1 ? " flow" : " flows") +
         (kinds.empty() ? "" : ": " + join(kinds)) + "\n";
  return out;
}

}  // namespace sw::capture
