#pragma once
// The offline side of diag: captured messages go through the same FlowTracker
// the live proxy feeds, on the capture's clock, and each call keeps a bounded
// ladder of its messages for the HTML report.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "diag/capture/captured.hpp"
#include "diag/flow_tracker.hpp"
#include "diag/verdict.hpp"

namespace sw::capture {

struct AnalyzeSettings {
  diag::TrackerSettings tracker;
  bool keep_ladders = false;            // only the HTML report draws them
  std::size_t max_ladder_calls = 2000;  // calls drawn; later ones are counted, not kept
  std::size_t max_ladder_messages = 60; // arrows (and verdicts) per call; later ones are counted, not kept
};

// One arrow of a ladder diagram.
struct LadderMessage {
  TimePoint time;
  bool has_time = false;
  std::string src, dst;   // "ip:port"; "" when the trace does not say
  std::string transport;
  std::string label;      // "INVITE sip:1001@example.com" or "401 Unauthorized"
  bool is_request = false;
  int status = 0;
  std::string cseq;       // "2 REGISTER"
  bool challenge = false;    // 401/407 carrying a challenge
  bool credentials = false;  // a request carrying Authorization/Proxy-Authorization
  std::string auth;          // the digest exchange in short, as diag::auth_summary writes it
};

// One Call-ID: its messages in capture order and the verdicts of its flows.
struct CallLadder {
  std::string call_id;
  std::vector<LadderMessage> messages;
  std::size_t messages_not_kept = 0;
  std::vector<diag::Verdict> verdicts;
};

struct AnalysisStats {
  std::uint64_t messages = 0;     // parsed and fed to the tracker
  std::uint64_t unparsable = 0;   // handed over by a reader but rejected by the parser
  std::uint64_t verdicts = 0;
  std::map<std::string, std::uint64_t> by_verdict;  // verdict name -> flows
  // Verdicts not drawn: their call was past max_ladder_calls, or already had
  // max_ladder_messages verdicts.
  std::uint64_t calls_not_kept = 0;
  std::vector<std::string> parse_errors;  // the first few: "file: offset N: reason"
};

class Analyzer {
 public:
  using VerdictSink = std::function<void(const diag::Verdict&)>;
  Analyzer(AnalyzeSettings settings, VerdictSink on_verdict);
  Analyzer(const Analyzer&) = delete;  // the tracker's sink points back here
  Analyzer& operator=(const Analyzer&) = delete;

  // `origin` names the file, for parse errors.
  void feed(const CapturedMessage& message, const std::string& origin);
  // End of input: every open flow gets its verdict, timed at the last message seen.
  void finish();

  const AnalysisStats& stats() const { return stats_; }
  const std::vector<CallLadder>& ladders() const { return ladders_; }  // first-seen order

 private:
  void record(const diag::Verdict& v);
  void draw(const CapturedMessage& captured, const sip::Message& m);

  AnalyzeSettings settings_;
  VerdictSink on_verdict_;
  AnalysisStats stats_;
  std::vector<CallLadder> ladders_;
  std::unordered_map<std::string, std::size_t> ladder_of_call_;
  diag::FlowTracker tracker_;
  std::optional<TimePoint> last_time_;  // the capture's clock
  TimePoint last_tick_{};
  bool finishing_ = false;
};

}  // namespace sw::capture
