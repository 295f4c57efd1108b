#include "analysis.hpp"

#include "diag/observer.hpp"
#include "proxy/sip/message.hpp"

namespace sw::capture {
namespace {

constexpr std::size_t kParseErrorsKept = 20;
constexpr auto kTickEvery = std::chrono::seconds(1);


}  // namespace

Analyzer::Analyzer(AnalyzeSettings settings, VerdictSink on_verdict)
    : settings_(std::move(settings)),
      on_verdict_(std::move(on_verdict)),
      tracker_(settings_.tracker, [this](const diag::Verdict& v) { record(v); }) {}

void Analyzer::feed(const CapturedMessage& captured, const std::string& origin) {
  // Text traces without timestamps keep the order of the file on the last clock seen.
  TimePoint time = captured.time.value_or(last_time_.value_or(TimePoint{}));
  if (!last_time_ || time > *last_time_) last_time_ = time;

  auto framing = captured.transport == "tcp" || captured.transport == "tls" ? sip::Framing::stream
                                                                              : sip::Framing::datagram;
  auto parsed = sip::parse(captured.bytes, framing, kCaptureLimits);
  if (!parsed) {
    ++stats_.unparsable;
    if (stats_.parse_errors.size() < kParseErrorsKept) {
      std::string where = captured.line ? "line " + std::to_string(captured.line)
                                        : "offset " + std::to_string(captured.offset);
      stats_.parse_errors.push_back(origin + ": " + where + ": " + std::string(parsed.error().detail));
    }
    return;
  }
  ++stats_.messages;
  // Flows that went silent end on the capture's clock, as they would live.
  if (*last_time_ - last_tick_ >= kTickEvery) {
    tracker_.tick(*last_time_);
    last_tick_ = *last_time_;
  }
  const auto& m = *parsed;
  // A capture has no "our side": every message is one the diagnosis receives,
  // requests from the phone's side, responses from the server's.
  diag::Observed event{diag::Direction::received,
                       m.is_request ? diag::Leg::phone : diag::Leg::upstream,
                       time,
                       captured.transport.empty() ? std::string_view("udp") : captured.transport,
                       captured.src,
                       m};
  tracker_.on_message(event);
  if (settings_.keep_ladders) draw(captured, m);
}

void Analyzer::draw(const CapturedMessage& captured, const sip::Message& m) {
  std::string call_id(m.value(sip::HeaderId::CallId));
  auto it = ladder_of_call_.find(call_id);
  if (it == ladder_of_call_.end()) {
    if (ladders_.size() >= settings_.max_ladder_calls) return;
    it = ladder_of_call_.emplace(call_id, ladders_.size()).first;
    ladders_.push_back(CallLadder{call_id, {}, 0, {}});
  }
  auto& ladder = ladders_[it->second];
  if (ladder.messages.size() >= settings_.max_ladder_messages) {
    ++ladder.messages_not_kept;
    return;
  }
  LadderMessage arrow;
  arrow.time = captured.time.value_or(TimePoint{});
  arrow.has_time = captured.time.has_value();
  arrow.src = captured.src;
  arrow.dst = captured.dst;
  arrow.transport = std::string(captured.transport);
  arrow.is_request = m.is_request;
  arrow.status = m.status;
  if (m.is_request) {
    arrow.label = std::string(m.method) + " " + std::string(m.request_uri);
    arrow.credentials = m.first(sip::HeaderId::Authorization) || m.first(sip::HeaderId::ProxyAuthorization);
  } else {
    arrow.label = std::to_string(m.status) + " " + std::string(m.reason);
    arrow.challenge = (m.status == 401 && m.first(sip::HeaderId::WwwAuthenticate)) ||
                      (m.status == 407 && m.first(sip::HeaderId::ProxyAuthenticate));
  }
  arrow.cseq = std::string(m.value(sip::HeaderId::CSeq));
  arrow.auth = diag::auth_summary(m);
  ladder.messages.push_back(std::move(arrow));
}

void Analyzer::finish() {
  finishing_ = true;
  tracker_.finish(last_time_.value_or(TimePoint{}));
  finishing_ = false;
}

void Analyzer::record(const diag::Verdict& verdict) {
  diag::Verdict v = verdict;
  // Silence after a challenge proves nothing when the capture simply stopped:
  // say so, and do not claim certainty.
  if (finishing_ && (v.verdict == diag::VerdictKind::no_credentials || v.verdict == diag::VerdictKind::unanswered)) {
    v.evidence.emplace_back("capture_ended", true);
    v.confidence = diag::Confidence::likely;
  }
  ++stats_.verdicts;
  ++stats_.by_verdict[std::string(diag::to_string(v.verdict))];
  if (settings_.keep_ladders) {
    auto it = ladder_of_call_.find(v.call_id);
    // One Call-ID can carry endless flows (REGISTER refreshes): its card stays bounded too.
    if (it != ladder_of_call_.end() && ladders_[it->second].verdicts.size() < settings_.max_ladder_messages)
      ladders_[it->second].verdicts.push_back(v);
    else
      ++stats_.calls_not_kept;
  }
  if (on_verdict_) on_verdict_(v);
}

}  // namespace sw::capture
