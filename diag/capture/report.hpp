#pragma once
// Renderings of an analysis: text (a line per flow, then its evidence and
// hint), JSON (the verdict log lines), and one self-contained HTML page with a
// ladder diagram per call.
#include <ostream>
#include <string>
#include <vector>

#include "diag/capture/analysis.hpp"
#include "diag/capture/captured.hpp"

namespace sw::capture {

// What was read from each input file, for the report's summary.
struct InputSummary {
  std::string file;
  std::string format;  // "pcap", "pcapng", "text"
  ReadOutcome outcome;
};

// The text rendering of one verdict: the flow line, then indented evidence and hint.
std::string format_text_verdict(const diag::Verdict& v);
// The closing summary of text output: per file what was read and what was not.
std::string format_text_summary(const std::vector<InputSummary>& inputs, const AnalysisStats& stats);

// One HTML page, no external assets (inline CSS and SVG), opens offline.
void write_html(std::ostream& out, const std::vector<InputSummary>& inputs, const AnalysisStats& stats,
                const std::vector<CallLadder>& ladders);

}  // namespace sw::capture
