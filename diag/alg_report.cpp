#include "alg_report.hpp"

#include "diag/seal.hpp"
#include "proxy/sip/uri.hpp"
#include "diag/verdict.hpp"

namespace sw::diag {
namespace {

std::string_view ip_of(std::string_view peer) {
  auto hp = sip::parse_host_port(peer);
  if (!hp) return peer;
  auto host = hp->host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host;
}

std::string quoted(const std::string& value) { return "\"" + printable(value) + "\""; }

std::string what(const Observed& e) {
  const auto& m = e.message;
  std::string text = m.is_request ? std::string(m.method)
                                  : std::to_string(m.status) + " (" + std::string(m.cseq_method) + ")";
  return text + " call-id=" + printable(std::string(m.value(sip::HeaderId::CallId)));
}

}  // namespace

AlgReport::AlgReport(Sink sink, std::size_t max_paths) : sink_(std::move(sink)), max_paths_(max_paths) {}

AlgReport::Path* AlgReport::path_for(std::string_view transport, std::string_view peer_ip) {
  for (auto& p : paths_)
    if (p.transport == transport && p.peer_ip == peer_ip) return &p;
  if (paths_.size() >= max_paths_) {
    ++paths_dropped_;
    return nullptr;
  }
  auto& path = paths_.emplace_back();
  path.transport = std::string(transport);
  path.peer_ip = std::string(peer_ip);
  return &path;
}

void AlgReport::on_message(const Observed& e) {
  if (e.direction != Direction::received || !e.seal) return;
  auto* path = path_for(e.transport, ip_of(e.peer));
  if (!path) return;
  auto prefix = "alg: " + path->transport + " " + path->peer_ip + ": ";
  switch (e.seal->status) {
    case SealCheck::Status::absent:
      if (path->unsealed++ == 0)
        sink_(prefix + what(e) + " arrived without a seal: the device stripped it, or the message did not "
                                 "come through the other sipwitness (same lab key, the opposite lab.role)");
      return;
    case SealCheck::Status::invalid:
      if (path->invalid++ == 0) sink_(prefix + what(e) + ": the seal does not verify (" + e.seal->detail + ")");
      return;
    case SealCheck::Status::intact:
      ++path->sealed;
      return;
    case SealCheck::Status::rewritten:
      ++path->sealed;
      ++path->rewritten;
      for (const auto& c : e.seal->changes) {
        auto& count = path->fields[c.label];
        if (count++ == 0)
          sink_(prefix + "rewrites " + c.label + ": sent " + quoted(c.sent) + " arrived " + quoted(c.arrived) +
                " (first in " + what(e) + ")");
      }
      return;
  }
}

std::vector<std::string> AlgReport::summary() const {
  std::vector<std::string> lines;
  if (paths_.empty()) lines.emplace_back("alg report: nothing arrived on the lab path");
  for (const auto& p : paths_) {
    std::string line = "alg report: " + p.transport + " " + p.peer_ip + ": " + std::to_string(p.sealed) +
                       " sealed messages, " + std::to_string(p.rewritten) + " rewritten";
    if (!p.fields.empty()) {
      line += " (";
      bool first = true;
      for (const auto& [label, count] : p.fields) {
        line += (first ? "" : ", ") + label + " " + std::to_string(count);
        first = false;
      }
      line += ")";
    }
    line += ", " + std::to_string(p.unsealed) + " unsealed, " + std::to_string(p.invalid) + " invalid";
    lines.push_back(std::move(line));
  }
  if (paths_dropped_) lines.push_back("alg report: " + std::to_string(paths_dropped_) + " messages from further paths not counted");
  return lines;
}

}  // namespace sw::diag
