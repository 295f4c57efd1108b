#pragma once
// The per-path ALG report of lab mode: what the device under test rewrites,
// per transport and peer, from the seals checked on arrival. Rewrites of the
// digest exchange also become verdicts (FlowTracker); this report covers every
// field, so an engineer learns "this router rewrites Via, Contact and SDP c=
// over UDP" without reading verdicts. Pure: lines go to a sink.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "diag/observer.hpp"

namespace sw::diag {

class AlgReport : public Observer {
 public:
  using Sink = std::function<void(const std::string& line)>;
  // Each path's first rewrite of a field, first unsealed and first invalid
  // message are told at once; the counts wait for summary().
  explicit AlgReport(Sink sink, std::size_t max_paths = 256);

  void on_message(const Observed& e) override;
  bool wants_relayed_copies() const override { return false; }  // it reads the lab path's arrivals

  struct Path {
    std::string transport, peer_ip;
    std::uint64_t sealed = 0, rewritten = 0, unsealed = 0, invalid = 0;
    std::map<std::string, std::uint64_t> fields;  // label -> messages it was rewritten in
  };
  const std::vector<Path>& paths() const { return paths_; }
  // "alg report: udp 203.0.113.1: 14 sealed messages, 12 rewritten (Via 12, SDP c= 2), 0 unsealed, 0 invalid"
  std::vector<std::string> summary() const;

 private:
  Path* path_for(std::string_view transport, std::string_view peer_ip);

  Sink sink_;
  std::size_t max_paths_;
  std::vector<Path> paths_;
  std::uint64_t paths_dropped_ = 0;
};

}  // namespace sw::diag
