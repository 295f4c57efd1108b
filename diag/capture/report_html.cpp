// The HTML report: one self-contained page (inline CSS and SVG, no script, no
// external asset) a support engineer can open offline or attach to a ticket.
// Every text in it comes off the wire or from a file name, so every text goes
// through clean() and escape_into(); the page is written call by call so memory
// stays at one call's markup whatever the number of calls.
#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "diag/capture/report.hpp"

namespace sw::capture {
namespace {

using diag::Confidence;
using diag::Verdict;
using diag::VerdictKind;

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
constexpr std::string_view kEllipsis = "\xE2\x80\xA6";     // U+2026

// ------------------------------------------------------------------ text

// Valid UTF-8 without control characters: the page declares UTF-8, and a stray
// byte or a NUL from a capture must not garble what follows it.
std::string clean(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) out += kReplacement;
      else out += static_cast<char>(c);
      ++i;
      continue;
    }
    // RFC 3629 section 4: the second byte's range depends on the first (no
    // overlong forms, no surrogates, nothing past U+10FFFF).
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool valid = len != 0 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      unsigned b = static_cast<unsigned char>(s[i + k]);
      valid = k == 1 ? (b >= lo && b <= hi) : (b >= 0x80 && b <= 0xBF);
    }
    if (!valid) {
      out += kReplacement;
      ++i;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

bool continuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

std::size_t code_points(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) { return !continuation(c); }));
}

// At most max_chars code points of clean text (0: no limit); an ellipsis marks a cut.
std::string clip(std::string_view s, std::size_t max_chars) {
  if (max_chars == 0 || code_points(s) <= max_chars) return std::string(s);
  std::size_t kept = 0, i = 0;
  for (; i < s.size(); ++i) {
    if (continuation(s[i])) continue;
    if (kept == max_chars - 1) break;
    ++kept;
  }
  return std::string(s.substr(0, i)) + std::string(kEllipsis);
}

void escape_into(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
}

// The page under construction; flushed to the stream after each call.
class Page {
 public:
  Page& raw(std::string_view s) {
    buf_ += s;
    return *this;
  }
  // Any text that is not markup: escaped, safe in element content and in quoted attributes.
  Page& text(std::string_view s) {
    escape_into(buf_, clean(s));
    return *this;
  }
  Page& clipped(std::string_view s, std::size_t max_chars) {
    escape_into(buf_, clip(clean(s), max_chars));
    return *this;
  }
  template <typename N>
    requires std::is_arithmetic_v<N>
  Page& num(N n) {
    buf_ += std::to_string(n);
    return *this;
  }
  void flush(std::ostream& out) {
    out << buf_;
    buf_.clear();
  }

 private:
  std::string buf_;
};

std::string fixed3(double x) {
  char buf[48];  // any double in %.3f fits
  std::snprintf(buf, sizeof buf, "%.3f", x);
  return buf;
}

// "2026-11-21 10:00:00.123 UTC": the verdict log's time, easier to read.
std::string utc_text(TimePoint t) {
  auto text = diag::iso8601_utc(t);
  text[10] = ' ';
  text.pop_back();  // the Z
  return text + " UTC";
}

std::string offset_text(TimePoint t, TimePoint origin) {
  double s = std::chrono::duration<double>(t - origin).count();
  return (s < 0 ? "" : "+") + fixed3(s) + " s";
}

std::string byte_size(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double x = static_cast<double>(n);
  std::size_t u = 0;
  while (x >= 1024.0 && u + 1 < std::size(units)) {
    x /= 1024.0;
    ++u;
  }
  if (u == 0) return std::to_string(n) + " B";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.1f %s", x, units[u]);
  return buf;
}

std::string counted(std::uint64_t n, std::string_view one, std::string_view many) {
  return std::to_string(n) + " " + std::string(n == 1 ? one : many);
}

// ------------------------------------------------------------------ verdicts

// Every kind in enum order (a new kind breaks tone()'s switch: add it here too).
constexpr std::array kAllKinds{
    VerdictKind::ok,           VerdictKind::ok_after_challenge, VerdictKind::wrong_password,
    VerdictKind::realm_mismatch, VerdictKind::username_mismatch, VerdictKind::nonce_expired,
    VerdictKind::uri_mismatch,   VerdictKind::alg_rewrite,       VerdictKind::algorithm_unsupported,
    VerdictKind::no_credentials, VerdictKind::auth_loop,         VerdictKind::forbidden,
    VerdictKind::unanswered,
};

constexpr bool in_enum_order() {
  for (std::size_t i = 0; i < kAllKinds.size(); ++i)
    if (static_cast<std::size_t>(kAllKinds[i]) != i) return false;
  return true;
}
static_assert(in_enum_order(), "counts are indexed by the enum's value");

// good: nothing to fix; bad: the credentials or something on the path are
// wrong; warn: the exchange did not finish, so the cause is less direct.
std::string_view tone(VerdictKind k) {
  switch (k) {
    case VerdictKind::ok:
    case VerdictKind::ok_after_challenge: return "good";
    case VerdictKind::no_credentials:
    case VerdictKind::nonce_expired:
    case VerdictKind::auth_loop:
    case VerdictKind::unanswered: return "warn";
    case VerdictKind::wrong_password:
    case VerdictKind::realm_mismatch:
    case VerdictKind::username_mismatch:
    case VerdictKind::uri_mismatch:
    case VerdictKind::alg_rewrite:
    case VerdictKind::algorithm_unsupported:
    case VerdictKind::forbidden: return "bad";
  }
  return "bad";
}

bool passes(const CallLadder& call) {
  return std::all_of(call.verdicts.begin(), call.verdicts.end(),
                     [](const Verdict& v) { return tone(v.verdict) == "good"; });
}

// The distinct verdict names of a call, space-separated (CSS `~=` matches one), or "none".
std::string verdict_attr(const CallLadder& call) {
  std::string out;
  for (auto k : kAllKinds) {
    auto is_k = [k](const Verdict& v) { return v.verdict == k; };
    if (std::none_of(call.verdicts.begin(), call.verdicts.end(), is_k)) continue;
    if (!out.empty()) out += ' ';
    out += to_string(k);
  }
  return out.empty() ? "none" : out;
}

// The evidence pair that proves a mismatch, so the page can mark both values.
std::pair<std::string_view, std::string_view> mismatch_keys(VerdictKind k) {
  switch (k) {
    case VerdictKind::realm_mismatch: return {"challenge_realm", "credential_realm"};
    case VerdictKind::uri_mismatch: return {"digest_uri", "request_uri"};
    case VerdictKind::username_mismatch: return {"credential_username", "aor_user"};
    default: return {};
  }
}

// For reading rather than parsing (diag::evidence_text gives JSON): lists joined
// with commas, seconds with their unit.
std::string evidence_shown(std::string_view key, const diag::EvidenceValue& value) {
  bool seconds = key.size() > 2 && key.substr(key.size() - 2) == "_s";
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          return x;
        } else if constexpr (std::is_same_v<T, long long>) {
          return std::to_string(x) + (seconds ? " s" : "");
        } else if constexpr (std::is_same_v<T, double>) {
          return fixed3(x) + (seconds ? " s" : "");
        } else if constexpr (std::is_same_v<T, bool>) {
          return x ? "true" : "false";
        } else {
          std::string joined;
          for (const auto& item : x) joined += (joined.empty() ? "" : ", ") + item;
          return joined;
        }
      },
      value);
}

void badge(Page& p, const Verdict& v) {
  p.raw("<span class=\"badge ").raw(tone(v.verdict)).raw(v.confidence == Confidence::likely ? " likely" : "")
      .raw("\">").raw(to_string(v.verdict)).raw(v.confidence == Confidence::likely ? " <small>likely</small>" : "")
      .raw("</span>");
}

void verdict_card(Page& p, const Verdict& v) {
  p.raw("<article class=\"verdict ").raw(tone(v.verdict)).raw(" ").raw(to_string(v.confidence)).raw("\">");
  p.raw("<div class=\"vhead\"><span class=\"kind\">").raw(to_string(v.verdict)).raw("</span><span class=\"conf\">")
      .raw(to_string(v.confidence)).raw("</span></div>");
  p.raw("<div class=\"flow\"><b>").text(v.method).raw("</b> <code>").text(v.aor.empty() ? "-" : v.aor)
      .raw("</code></div>");
  p.raw("<div class=\"facts\">user <b>").text(v.user.empty() ? "-" : v.user).raw("</b> &middot; from <code>")
      .text(v.source.empty() ? "(unknown)" : v.source).raw("</code> &middot; ")
      .text(counted(static_cast<std::uint64_t>(std::max(v.challenges, 0)), "challenge", "challenges"))
      .raw(" &middot; final <b>");
  if (v.final_status) p.num(v.final_status);
  else p.raw("none");
  p.raw("</b></div>");
  if (!v.evidence.empty()) {
    auto [left, right] = mismatch_keys(v.verdict);
    p.raw("<dl class=\"ev\">");
    for (const auto& [key, value] : v.evidence) {
      auto shown = evidence_shown(key, value);
      bool marked = !left.empty() && (key == left || key == right);
      p.raw("<dt>").text(key).raw(marked ? "</dt><dd class=\"diff\">" : "</dt><dd>");
      if (shown.empty()) p.raw("<i>(empty)</i>");
      else p.text(shown);
      p.raw("</dd>");
    }
    p.raw("</dl>");
  }
  if (!v.hint.empty()) p.raw("<p class=\"hint\">").text(v.hint).raw("</p>");
  p.raw("</article>");
}

// ------------------------------------------------------------------ ladder

constexpr int kTimeCol = 92;     // left column: time offset and CSeq
constexpr int kHead = 52;        // host boxes above the lifelines
constexpr int kMinCol = 230, kMaxCol = 340;  // lifeline spacing bounds
constexpr double kLabelChar = 6.9;  // average width of a 12px label character
constexpr double kAuthChar = 6.3;   // of a 10.5px monospace character
constexpr std::size_t kAuthLines = 3;
constexpr std::size_t kTooltipChars = 400;
constexpr int kBesideWidth = 780;  // what fits beside the verdicts in a 1280 px window
// Arrows on one page: beyond it later calls keep their verdicts but lose their
// diagram, so a capture of thousands of long calls still gives a page a browser opens.
constexpr std::size_t kPageArrows = 20000;

// Lane keys no address can equal (a control character never survives the parser).
constexpr std::string_view kUnknownClient = "(unknown)\x1f" "client";
constexpr std::string_view kUnknownServer = "(unknown)\x1f" "server";

// A trace without addresses still gets two lifelines: an unknown sender of a
// request (or receiver of a response) is the client side, the other end the server side.
std::string end_key(const LadderMessage& m, bool sender) {
  const std::string& address = sender ? m.src : m.dst;
  if (!address.empty()) return address;
  return std::string(sender == m.is_request ? kUnknownClient : kUnknownServer);
}

struct Wrapped {
  std::vector<std::string> lines;
  bool clipped = false;  // some text did not fit
};

// Greedy word wrap of clean text into at most max_lines lines of max_chars;
// the last line is clipped when text remains.
Wrapped wrap(const std::string& s, std::size_t max_chars, std::size_t max_lines) {
  Wrapped out;
  auto& lines = out.lines;
  auto add = [&](const std::string& line) {
    lines.push_back(clip(line, max_chars));
    out.clipped = out.clipped || lines.back().size() != line.size();
  };
  std::string line;
  std::size_t start = 0;
  while (start <= s.size()) {
    auto space = s.find(' ', start);
    if (space == std::string::npos) space = s.size();
    std::string word = s.substr(start, space - start);
    start = space + 1;
    if (word.empty()) continue;
    if (!line.empty() && code_points(line) + 1 + code_points(word) > max_chars) {
      if (lines.size() + 1 == max_lines) {
        add(line + " " + word);
        out.clipped = true;  // and any words after this one
        return out;
      }
      add(line);
      line.clear();
    }
    line += (line.empty() ? "" : " ") + word;
  }
  if (!line.empty()) add(line);
  return out;
}

struct Row {
  int y = 0, height = 0;
  std::size_t from = 0, to = 0;  // lanes
  std::vector<std::string> auth_lines;
  bool auth_clipped = false;  // then the tooltip carries the whole text
};

// Where everything of one ladder goes, computed before any markup so the call's
// section can pick its layout from the diagram's width.
struct Layout {
  std::vector<std::string> lanes;  // lane keys, in first-seen order
  std::vector<Row> rows;
  int col = kMinCol, width = 0, height = 0, bottom = 0;
  std::optional<TimePoint> origin;  // the call's first timestamp
  int lane_x(std::size_t i) const { return kTimeCol + col / 2 + static_cast<int>(i) * col; }
};

std::size_t lane_of(std::vector<std::string>& lanes, const std::string& key) {
  auto it = std::find(lanes.begin(), lanes.end(), key);
  if (it != lanes.end()) return static_cast<std::size_t>(it - lanes.begin());
  lanes.push_back(key);
  return lanes.size() - 1;
}

std::string_view arrow_class(const LadderMessage& m) {
  if (m.challenge) return "chal";
  if (m.credentials) return "cred";
  if (m.is_request) return "req";
  if (m.status >= 200 && m.status < 300) return "okr";
  if (m.status >= 300) return "err";
  return "prov";
}

Layout lay_out(const CallLadder& call) {
  Layout lay;
  lay.rows.resize(call.messages.size());
  // Spacing wide enough for the longest label or auth line, within bounds.
  double needed = 0;
  for (std::size_t i = 0; i < call.messages.size(); ++i) {
    const auto& m = call.messages[i];
    lay.rows[i].from = lane_of(lay.lanes, end_key(m, true));
    lay.rows[i].to = lane_of(lay.lanes, end_key(m, false));
    needed = std::max(needed, static_cast<double>(code_points(clean(m.label))) * kLabelChar + 36);
    auto auth_chars = std::min<std::size_t>(code_points(clean(m.auth)), 64);
    needed = std::max(needed, static_cast<double>(auth_chars) * kAuthChar + 36);
    if (m.has_time && (!lay.origin || m.time < *lay.origin)) lay.origin = m.time;
  }
  lay.col = std::clamp(static_cast<int>(needed), kMinCol, kMaxCol);
  lay.width = kTimeCol + static_cast<int>(std::max<std::size_t>(lay.lanes.size(), 2)) * lay.col;
  int y = kHead + 14;
  for (std::size_t i = 0; i < call.messages.size(); ++i) {
    auto& r = lay.rows[i];
    int x1 = lay.lane_x(r.from), x2 = lay.lane_x(r.to);
    int span = r.from == r.to ? lay.width - x1 - 52 : std::abs(x2 - x1) - 16;
    const auto& auth = call.messages[i].auth;
    if (!auth.empty()) {
      auto wrapped = wrap(clean(auth), static_cast<std::size_t>(std::max(12.0, span / kAuthChar)), kAuthLines);
      r.auth_lines = std::move(wrapped.lines);
      r.auth_clipped = wrapped.clipped;
    }
    r.y = y;
    r.height = 40 + static_cast<int>(r.auth_lines.size()) * 13;
    y += r.height;
  }
  lay.bottom = y;
  lay.height = y + 10 + (call.messages_not_kept ? 24 : 0);
  return lay;
}

void ladder(Page& p, const CallLadder& call, const Layout& lay) {
  const auto& rows = lay.rows;
  const int width = lay.width, height = lay.height, col = lay.col, y = lay.bottom;
  p.raw("<svg class=\"lad\" width=\"").num(width).raw("\" height=\"").num(height)
      .raw("\" viewBox=\"0 0 ").num(width).raw(" ").num(height).raw("\" role=\"img\" aria-label=\"Ladder diagram, ")
      .num(call.messages.size()).raw(" messages\">");
  // Bands first, then lifelines, then arrows: the highlighted rows stay behind everything.
  for (std::size_t i = 0; i < rows.size(); ++i) {
    auto cls = arrow_class(call.messages[i]);
    if (cls != "chal" && cls != "cred") continue;
    p.raw("<rect class=\"band ").raw(cls).raw("\" x=\"2\" y=\"").num(rows[i].y + 2).raw("\" width=\"").num(width - 4)
        .raw("\" height=\"").num(rows[i].height - 4).raw("\" rx=\"5\"/>");
  }
  for (std::size_t i = 0; i < lay.lanes.size(); ++i) {
    int x = lay.lane_x(i);
    const auto& key = lay.lanes[i];
    bool unknown = key == kUnknownClient || key == kUnknownServer;
    p.raw("<line class=\"life\" x1=\"").num(x).raw("\" y1=\"").num(kHead).raw("\" x2=\"").num(x).raw("\" y2=\"")
        .num(y + 4).raw("\"/>");
    p.raw("<rect class=\"host").raw(unknown ? " unk" : "").raw("\" x=\"").num(x - col / 2 + 10)
        .raw("\" y=\"6\" width=\"").num(col - 20).raw("\" height=\"").num(kHead - 12).raw("\" rx=\"6\"/>");
    auto fit = static_cast<std::size_t>((col - 28) / 7);
    if (unknown) {
      p.raw("<text class=\"hn\" x=\"").num(x).raw("\" y=\"24\">(unknown)</text><text class=\"hs\" x=\"").num(x)
          .raw("\" y=\"38\">").raw(key == kUnknownClient ? "client side" : "server side").raw("</text>");
    } else {
      p.raw("<text class=\"hn\" x=\"").num(x).raw("\" y=\"31\">").clipped(key, fit).raw("<title>").text(key)
          .raw("</title></text>");
    }
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& m = call.messages[i];
    const auto& r = rows[i];
    auto cls = arrow_class(m);
    int x1 = lay.lane_x(r.from), x2 = lay.lane_x(r.to);
    // The tooltip has the whole summary, bounded so a huge header cannot swell the page.
    p.raw("<g class=\"m ").raw(cls).raw("\" transform=\"translate(0 ").num(r.y).raw(")\"><title>")
        .clipped(m.label, kTooltipChars);
    if (!m.cseq.empty()) p.raw("\nCSeq: ").clipped(m.cseq, kTooltipChars);
    p.raw("\n").clipped(m.src.empty() ? "(unknown)" : m.src, kTooltipChars).raw(" \xE2\x86\x92 ")
        .clipped(m.dst.empty() ? "(unknown)" : m.dst, kTooltipChars);
    if (!m.transport.empty()) p.raw(" ").clipped(m.transport, kTooltipChars);
    if (m.has_time) p.raw("\n").text(utc_text(m.time));
    if (r.auth_clipped) p.raw("\n").clipped(m.auth, kTooltipChars);
    p.raw("</title>");
    p.raw("<text class=\"t\" x=\"8\" y=\"18\">");
    if (m.has_time && lay.origin) p.text(offset_text(m.time, *lay.origin));
    else p.raw("#").num(i + 1);
    p.raw("</text>");
    if (!m.cseq.empty()) p.raw("<text class=\"cs\" x=\"8\" y=\"31\">").clipped(m.cseq, 13).raw("</text>");

    // Labels are centred on the arrow (the CSS default); a message to itself is labelled beside its loop.
    int text_x = 0;
    std::size_t fit = 0;
    std::string_view side = "";
    if (r.from == r.to) {
      p.raw("<path class=\"a\" d=\"M").num(x1).raw(" 20h34v12h-30\"/>");
      text_x = x1 + 42;
      side = " side";
      fit = static_cast<std::size_t>(std::max(10.0, (width - text_x - 8) / kLabelChar));
    } else {
      int tip = x2 > x1 ? x2 - 3 : x2 + 3;  // the marker's tip ends on the lifeline
      p.raw("<path class=\"a\" d=\"M").num(x1).raw(" 26H").num(tip).raw("\"/>");
      text_x = (x1 + x2) / 2;
      fit = static_cast<std::size_t>(std::max(10.0, (std::abs(x2 - x1) - 16) / kLabelChar));
    }
    p.raw("<text class=\"l").raw(side).raw("\" x=\"").num(text_x).raw("\" y=\"19\">").clipped(m.label, fit)
        .raw("</text>");
    if (!r.auth_lines.empty()) {
      p.raw("<text class=\"au").raw(side).raw("\" x=\"").num(text_x).raw("\" y=\"44\">").text(r.auth_lines[0]);
      for (std::size_t k = 1; k < r.auth_lines.size(); ++k)
        p.raw("<tspan x=\"").num(text_x).raw("\" dy=\"13\">").text(r.auth_lines[k]).raw("</tspan>");
      p.raw("</text>");
    }
    p.raw("</g>");
  }
  if (call.messages_not_kept) {
    p.raw("<text class=\"more\" x=\"8\" y=\"").num(y + 20).raw("\">")
        .text(counted(call.messages_not_kept, "more message", "more messages")).raw(" in this call, not drawn</text>");
  }
  p.raw("</svg>");
}

// ------------------------------------------------------------------ page parts

constexpr std::string_view kStyle = R"css(
:root{color-scheme:light;--ink:#1e293b;--mute:#64748b;--line:#e2e8f0;--bg:#f8fafc;
--good:#15803d;--good-bg:#dcfce7;--warn:#b45309;--warn-bg:#fef3c7;--bad:#b91c1c;--bad-bg:#fee2e2;
--chal:#c2410c;--chal-bg:#ffedd5;--cred:#1d4ed8;--cred-bg:#dbeafe;
--mono:ui-monospace,"SFMono-Regular","DejaVu Sans Mono",Menlo,Consolas,monospace}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;color:var(--ink);background:var(--bg)}
code,.mono{font-family:var(--mono);font-size:.92em}
a{color:var(--cred)}
.top{background:#0f172a;color:#e2e8f0;padding:18px 28px 20px}
.top h1{margin:0 0 4px;font-size:21px;font-weight:650;letter-spacing:.2px}
.top h1 span{color:#94a3b8;font-weight:400}
.top .sub{color:#94a3b8;margin-bottom:12px}
.inputs{border-collapse:collapse;width:100%;font-size:13px;background:#1e293b;border-radius:8px;overflow:hidden}
.inputs th,.inputs td{text-align:left;padding:7px 10px;border-bottom:1px solid #334155;vertical-align:top}
.inputs th{color:#94a3b8;font-weight:500;font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.inputs td.file{font-family:var(--mono);overflow-wrap:anywhere;color:#f8fafc}
.inputs .miss{color:#fdba74}.inputs .stop{color:#fca5a5;font-weight:600}
.inputs .none{color:#86efac}.inputs .aside{color:#94a3b8}
.analysis{margin-top:10px;color:#cbd5e1;font-size:13px}
.analysis b{color:#f8fafc}
.notice{margin-top:10px;padding:8px 12px;border-radius:6px;background:#422006;color:#fde68a;font-size:13px}
details.errs{margin-top:8px;font-size:12.5px;color:#cbd5e1}
details.errs li{font-family:var(--mono);overflow-wrap:anywhere}
.tiles{display:flex;flex-wrap:wrap;gap:10px;padding:16px 28px 4px}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:8px 14px;min-width:120px}
.tile b{display:block;font-size:22px;line-height:1.2}
.tile span{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.4px}
.tile.good b{color:var(--good)}.tile.bad b{color:var(--bad)}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
nav.filters{display:flex;flex-wrap:wrap;gap:6px;padding:10px 28px 6px;align-items:center}
nav.filters .cap{color:var(--mute);font-size:12px;text-transform:uppercase;letter-spacing:.4px;margin-right:4px}
nav.filters label{cursor:pointer;border:1px solid var(--line);background:#fff;border-radius:999px;padding:3px 11px;font-size:13px;user-select:none}
nav.filters label i{font-style:normal;color:var(--mute);margin-left:4px}
nav.filters label.good{border-color:#86efac}nav.filters label.warn{border-color:#fcd34d}nav.filters label.bad{border-color:#fca5a5}
main{padding:6px 28px 28px}
.toc{background:#fff;border:1px solid var(--line);border-radius:8px;margin:8px 0 18px;overflow:auto;max-height:420px}
.toc table{border-collapse:collapse;width:100%;font-size:13px}
.toc th{position:sticky;top:0;background:#f1f5f9;text-align:left;padding:6px 10px;font-weight:600;color:#475569;font-size:12px}
.toc td{padding:5px 10px;border-top:1px solid var(--line);vertical-align:top}
.toc td.cid{font-family:var(--mono);font-size:12.5px;overflow-wrap:anywhere;max-width:420px}
.toc td.n{color:var(--mute);text-align:right;width:1%}
.toc .vl{display:block;margin:1px 0}
.toc .vl code{color:#475569}
.badge{display:inline-block;font-family:var(--mono);font-size:12px;font-weight:600;padding:1px 8px;border-radius:4px;border:1px solid transparent;margin-right:6px}
.badge.good{background:var(--good-bg);color:var(--good);border-color:#86efac}
.badge.warn{background:var(--warn-bg);color:var(--warn);border-color:#fcd34d}
.badge.bad{background:var(--bad-bg);color:var(--bad);border-color:#fca5a5}
.badge.likely{border-style:dashed;background-image:repeating-linear-gradient(135deg,transparent 0 5px,rgba(255,255,255,.55) 5px 10px)}
.badge small{font-weight:400;font-size:10.5px;text-transform:uppercase}
section.call{background:#fff;border:1px solid var(--line);border-left:6px solid #94a3b8;border-radius:8px;margin:0 0 18px;padding:14px 18px 16px;content-visibility:auto;contain-intrinsic-size:auto 520px}
section.call.pass{border-left-color:var(--good)}
section.call.fail{border-left-color:var(--bad)}
section.call.fail.soft{border-left-color:var(--warn)}
section.call h2{margin:0;font-size:15px;font-weight:600;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
section.call h2 .num{color:var(--mute);font-weight:400}
section.call h2 code{font-size:14px;overflow-wrap:anywhere}
section.call h2 a.top-link{margin-left:auto;font-size:12px;font-weight:400;color:var(--mute);text-decoration:none}
.meta{color:var(--mute);font-size:12.5px;margin:2px 0 10px}
.meta .drop{color:var(--warn)}
.cbody{display:grid;grid-template-columns:minmax(280px,360px) minmax(0,1fr);gap:18px;align-items:start}
.cbody.wide{grid-template-columns:minmax(0,1fr)}
.cbody.wide .verdicts{display:flex;flex-wrap:wrap;gap:0 12px}
.cbody.wide .verdict{flex:1 1 340px;max-width:640px}
@media (max-width:1000px){.cbody{grid-template-columns:minmax(0,1fr)}}
.verdict{border-radius:8px;padding:10px 12px;margin-bottom:10px;border:1px solid var(--line)}
.verdict.good{background:#f0fdf4;border-color:#bbf7d0}
.verdict.warn{background:#fffbeb;border-color:#fde68a}
.verdict.bad{background:#fef2f2;border-color:#fecaca}
.verdict.likely{border-style:dashed;border-width:2px}
.vhead{display:flex;align-items:center;gap:8px;margin-bottom:4px}
.vhead .kind{font-family:var(--mono);font-size:16px;font-weight:700}
.verdict.good .kind{color:var(--good)}.verdict.warn .kind{color:var(--warn)}.verdict.bad .kind{color:var(--bad)}
.vhead .conf{font-size:11px;text-transform:uppercase;letter-spacing:.5px;padding:1px 7px;border-radius:999px;background:#334155;color:#fff}
.verdict.likely .conf{background:#fff;color:#334155;border:1px dashed #334155}
.flow{overflow-wrap:anywhere}
.facts{color:#475569;font-size:12.5px;margin:2px 0 6px;overflow-wrap:anywhere}
dl.ev{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 10px;margin:6px 0;font-size:12.5px}
dl.ev dt{font-family:var(--mono);color:#475569}
dl.ev dd{margin:0;font-family:var(--mono);overflow-wrap:anywhere}
dl.ev dd.diff{justify-self:start;background:#fecaca;color:#7f1d1d;border-radius:3px;padding:0 4px;font-weight:600}
dl.ev dd i{color:var(--mute)}
.hint{margin:8px 0 0;padding:7px 10px;background:#fff;border-left:3px solid currentColor;border-radius:4px;font-size:13px}
.verdict.good .hint{color:#14532d}.verdict.warn .hint{color:#78350f}.verdict.bad .hint{color:#7f1d1d}
.noverdict{color:var(--mute);font-style:italic}
.ladwrap{overflow-x:auto;border:1px solid var(--line);border-radius:8px;background:#fff}
svg.lad{display:block;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif}
svg.lad .host{fill:#f1f5f9;stroke:#94a3b8}
svg.lad .host.unk{stroke-dasharray:4 3}
svg.lad .hn{font:600 12.5px var(--mono);fill:var(--ink);text-anchor:middle}
svg.lad .hs{font-size:11px;fill:var(--mute);text-anchor:middle}
svg.lad .life{stroke:#94a3b8;stroke-width:1.2;stroke-dasharray:5 4}
svg.lad .band.chal{fill:var(--chal-bg);fill-opacity:.7}
svg.lad .band.cred{fill:var(--cred-bg);fill-opacity:.7}
svg.lad .a{fill:none;stroke:#475569;stroke-width:1.5;marker-end:url(#sw-a)}
svg.lad .okr .a{stroke:var(--good);marker-end:url(#sw-a-ok)}
svg.lad .err .a{stroke:var(--bad);marker-end:url(#sw-a-err)}
svg.lad .chal .a{stroke:var(--chal);stroke-width:2.6;marker-end:url(#sw-a-chal)}
svg.lad .cred .a{stroke:var(--cred);stroke-width:2.6;marker-end:url(#sw-a-cred)}
svg.lad .prov .a{stroke-dasharray:4 3}
svg.lad .l{font-size:12px;fill:var(--ink);text-anchor:middle}
svg.lad .okr .l{fill:var(--good);font-weight:600}
svg.lad .err .l{fill:var(--bad);font-weight:600}
svg.lad .chal .l{fill:var(--chal);font-weight:700}
svg.lad .cred .l{fill:var(--cred);font-weight:700}
svg.lad .au{font:10.5px var(--mono);fill:#334155;text-anchor:middle}
svg.lad .side{text-anchor:start}
svg.lad .chal .au{fill:#7c2d12}svg.lad .cred .au{fill:#1e3a8a}
svg.lad .t{font:11px var(--mono);fill:#475569}
svg.lad .cs{font:10px var(--mono);fill:#94a3b8}
svg.lad .more{font-size:12px;fill:var(--warn);font-style:italic}
.legend{display:flex;flex-wrap:wrap;gap:16px;align-items:center;color:var(--mute);font-size:12.5px;padding:2px 28px 6px}
.legend svg{vertical-align:middle;margin-right:5px}
.nodiagram{color:var(--mute);font-style:italic;padding:10px;border:1px dashed var(--line);border-radius:8px}
.empty{padding:30px;text-align:center;color:var(--mute);background:#fff;border:1px dashed var(--line);border-radius:8px}
footer{color:var(--mute);font-size:12px;padding:0 28px 24px}
)css";

// Markers are shared by every ladder: one definition per colour, not per arrow.
constexpr std::string_view kMarkers =
    R"svg(<svg class="vh" width="0" height="0" aria-hidden="true"><defs>)svg"
    R"svg(<marker id="sw-a" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" fill="#475569"/></marker>)svg"
    R"svg(<marker id="sw-a-ok" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" fill="#15803d"/></marker>)svg"
    R"svg(<marker id="sw-a-err" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0 0L10 5L0 10z" fill="#b91c1c"/></marker>)svg"
    R"svg(<marker id="sw-a-chal" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5.5" markerHeight="5.5" orient="auto"><path d="M0 0L10 5L0 10z" fill="#c2410c"/></marker>)svg"
    R"svg(<marker id="sw-a-cred" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="5.5" markerHeight="5.5" orient="auto"><path d="M0 0L10 5L0 10z" fill="#1d4ed8"/></marker>)svg"
    R"svg(</defs></svg>)svg";

void legend_item(Page& p, std::string_view cls, std::string_view text) {
  p.raw("<span><svg class=\"lad\" width=\"44\" height=\"12\" aria-hidden=\"true\"><g class=\"").raw(cls)
      .raw("\"><line class=\"a\" x1=\"2\" y1=\"6\" x2=\"38\" y2=\"6\"/></g></svg>").raw(text).raw("</span>");
}

void input_row(Page& p, const InputSummary& in) {
  const auto& s = in.outcome.stats;
  p.raw("<tr><td class=\"file\">").text(in.file).raw("</td><td>").text(in.format.empty() ? "-" : in.format)
      .raw("</td><td>");
  std::vector<std::string> read{byte_size(s.bytes)};
  if (s.packets) read.push_back(counted(s.packets, "packet", "packets"));
  read.push_back(counted(s.sip_messages, "SIP message", "SIP messages"));
  if (s.udp_datagrams) read.push_back(counted(s.udp_datagrams, "UDP datagram", "UDP datagrams"));
  if (s.tcp_segments) read.push_back(counted(s.tcp_segments, "TCP segment", "TCP segments"));
  for (std::size_t i = 0; i < read.size(); ++i) p.raw(i ? " &middot; " : "").text(read[i]);
  std::vector<std::string> aside;
  if (s.reassembled_datagrams)
    aside.push_back(counted(s.reassembled_datagrams, "datagram", "datagrams") + " reassembled from " +
                    counted(s.ip_fragments, "fragment", "fragments"));
  else if (s.ip_fragments)
    aside.push_back(counted(s.ip_fragments, "IP fragment", "IP fragments"));
  if (s.tcp_retransmissions) aside.push_back(counted(s.tcp_retransmissions, "TCP retransmission", "TCP retransmissions") + " skipped");
  if (s.tcp_out_of_order) aside.push_back(counted(s.tcp_out_of_order, "out-of-order segment", "out-of-order segments") + " reordered");
  if (!aside.empty()) {
    p.raw("<div class=\"aside\">");
    for (std::size_t i = 0; i < aside.size(); ++i) p.raw(i ? " &middot; " : "").text(aside[i]);
    p.raw("</div>");
  }
  p.raw("</td><td>");
  std::vector<std::string> missed;
  if (s.tls_packets) missed.push_back(counted(s.tls_packets, "TLS packet", "TLS packets") + " (encrypted, not readable)");
  if (s.non_sip) missed.push_back(counted(s.non_sip, "non-SIP payload", "non-SIP payloads"));
  if (s.incomplete_fragments)
    missed.push_back(counted(s.incomplete_fragments, "datagram", "datagrams") + " with fragments missing");
  if (s.tcp_gaps) missed.push_back(counted(s.tcp_gaps, "TCP stream", "TCP streams") + " with missing bytes (gaps)");
  if (s.unsupported) missed.push_back(counted(s.unsupported, "packet", "packets") + " of unsupported protocols");
  if (s.malformed) missed.push_back(counted(s.malformed, "malformed packet", "malformed packets"));
  if (s.unreadable_text) missed.push_back(counted(s.unreadable_text, "unframeable text block", "unframeable text blocks"));
  if (missed.empty() && !in.outcome.error) p.raw("<span class=\"none\">nothing</span>");
  for (const auto& m : missed) p.raw("<div class=\"miss\">").text(m).raw("</div>");
  if (in.outcome.error) p.raw("<div class=\"stop\">stopped: ").text(in.outcome.error->describe()).raw("</div>");
  p.raw("</td></tr>");
}

void header(Page& p, const std::vector<InputSummary>& inputs, const AnalysisStats& stats,
            const std::vector<CallLadder>& ladders, std::size_t diagrams) {
  p.raw("<header class=\"top\" id=\"top\"><h1>sipwitness analysis <span>&middot; SIP digest authentication</span></h1>");
  std::optional<TimePoint> first, last;
  for (const auto& call : ladders)
    for (const auto& m : call.messages) {
      if (!m.has_time) continue;
      if (!first || m.time < *first) first = m.time;
      if (!last || m.time > *last) last = m.time;
    }
  p.raw("<div class=\"sub\">");
  p.text(counted(inputs.size(), "input file", "input files"));
  if (first) p.raw(" &middot; capture from ").text(utc_text(*first)).raw(" to ").text(utc_text(*last));
  else p.raw(" &middot; no timestamps in the input");
  p.raw("</div>");
  p.raw("<table class=\"inputs\"><thead><tr><th>File</th><th>Format</th><th>Read</th><th>Not read</th></tr></thead><tbody>");
  for (const auto& in : inputs) input_row(p, in);
  p.raw("</tbody></table>");
  p.raw("<div class=\"analysis\"><b>").num(stats.messages).raw("</b> SIP messages analysed &middot; <b>")
      .num(stats.unparsable).raw("</b> rejected by the parser &middot; <b>").num(stats.verdicts)
      .raw("</b> verdicts</div>");
  if (!stats.parse_errors.empty()) {
    p.raw("<details class=\"errs\"><summary>First parse errors (").num(stats.parse_errors.size())
        .raw(")</summary><ul>");
    for (const auto& e : stats.parse_errors) p.raw("<li>").text(e).raw("</li>");
    p.raw("</ul></details>");
  }
  if (stats.calls_not_kept) {
    p.raw("<div class=\"notice\">").text(counted(stats.calls_not_kept, "later call is", "later calls are"))
        .raw(" not drawn here (this page draws the first ").num(ladders.size())
        .raw(" calls); their verdicts are in the text and JSON output and in the verdict total above.</div>");
  }
  if (diagrams < ladders.size()) {
    p.raw("<div class=\"notice\">Ladder diagrams are drawn for the first ").num(diagrams).raw(" calls only (at most ")
        .num(kPageArrows).raw(" messages per page); the ").num(ladders.size() - diagrams)
        .raw(" calls after them show their verdicts without a diagram.</div>");
  }
  p.raw("</header>");
}

// Counts and CSS-only filters: a radio per choice, rules hiding what does not match.
void summary(Page& p, const AnalysisStats& stats, const std::vector<CallLadder>& ladders) {
  std::array<std::uint64_t, kAllKinds.size()> counts{};
  std::uint64_t failing_calls = 0;
  for (const auto& call : ladders) {
    if (!passes(call)) ++failing_calls;
    for (const auto& v : call.verdicts) ++counts[static_cast<std::size_t>(v.verdict)];
  }
  std::uint64_t good = counts[static_cast<std::size_t>(VerdictKind::ok)] +
                       counts[static_cast<std::size_t>(VerdictKind::ok_after_challenge)];
  std::uint64_t shown = 0;
  for (auto c : counts) shown += c;
  p.raw("<div class=\"tiles\"><div class=\"tile\"><b>").num(ladders.size() + stats.calls_not_kept)
      .raw("</b><span>calls</span></div><div class=\"tile\"><b>").num(shown)
      .raw(stats.calls_not_kept ? "</b><span>verdicts drawn</span></div>" : "</b><span>verdicts</span></div>")
      .raw("<div class=\"tile good\"><b>").num(good)
      .raw("</b><span>ok</span></div><div class=\"tile bad\"><b>").num(shown - good)
      .raw("</b><span>problems</span></div><div class=\"tile bad\"><b>").num(failing_calls)
      .raw("</b><span>calls with a problem</span></div></div>");

  p.raw("<style>");
  auto rule = [&](std::string_view id, std::string_view hide) {
    p.raw("#f-").raw(id).raw(":checked~nav label[for=f-").raw(id)
        .raw("]{background:#0f172a;color:#fff;border-color:#0f172a}");
    if (!hide.empty()) p.raw("#f-").raw(id).raw(":checked~main ").raw(hide).raw("{display:none}");
  };
  rule("all", "");
  rule("problems", ".pass");
  for (std::size_t i = 0; i < kAllKinds.size(); ++i) {
    if (!counts[i]) continue;
    auto name = to_string(kAllKinds[i]);
    std::string hide = "[data-verdict]:not([data-verdict~=\"" + std::string(name) + "\"])";
    rule(name, hide);
  }
  p.raw("</style>");
  p.raw("<input class=\"vh\" type=\"radio\" name=\"f\" id=\"f-all\" checked>"
        "<input class=\"vh\" type=\"radio\" name=\"f\" id=\"f-problems\">");
  for (std::size_t i = 0; i < kAllKinds.size(); ++i)
    if (counts[i])
      p.raw("<input class=\"vh\" type=\"radio\" name=\"f\" id=\"f-").raw(to_string(kAllKinds[i])).raw("\">");
  p.raw("<nav class=\"filters\" aria-label=\"Verdict counts\"><span class=\"cap\">Show</span>"
        "<label for=\"f-all\">all calls<i>")
      .num(ladders.size()).raw("</i></label><label for=\"f-problems\" class=\"bad\">calls with a problem<i>")
      .num(failing_calls).raw("</i></label>");
  for (std::size_t i = 0; i < kAllKinds.size(); ++i) {
    if (!counts[i]) continue;
    auto name = to_string(kAllKinds[i]);
    p.raw("<label for=\"f-").raw(name).raw("\" class=\"").raw(tone(kAllKinds[i])).raw("\" data-count=\"")
        .num(counts[i]).raw("\">").raw(name).raw("<i>").num(counts[i]).raw("</i></label>");
  }
  p.raw("</nav><div class=\"legend\">");
  legend_item(p, "chal", "401/407 challenge");
  legend_item(p, "cred", "request with credentials");
  legend_item(p, "okr", "2xx");
  legend_item(p, "err", "other final response");
  legend_item(p, "req", "request");
  p.raw("<span>dashed card = <b>likely</b>, solid = <b>certain</b></span></div>");
}

void toc(Page& p, const std::vector<CallLadder>& ladders) {
  p.raw("<section class=\"toc\" aria-label=\"Calls\"><table><thead><tr><th>#</th><th>Call-ID</th><th>Verdicts</th>"
        "<th>Messages</th></tr></thead><tbody>");
  for (std::size_t i = 0; i < ladders.size(); ++i) {
    const auto& call = ladders[i];
    p.raw("<tr class=\"").raw(passes(call) ? "pass" : "fail").raw("\" data-verdict=\"").raw(verdict_attr(call))
        .raw("\"><td class=\"n\">").num(i + 1).raw("</td><td class=\"cid\"><a href=\"#call-").num(i + 1).raw("\">")
        .clipped(call.call_id, 72).raw("</a></td><td>");
    if (call.verdicts.empty()) p.raw("<span class=\"noverdict\">no auth flow</span>");
    for (const auto& v : call.verdicts) {
      p.raw("<span class=\"vl\">");
      badge(p, v);
      p.text(v.method).raw(" <code>").clipped(v.aor, 60).raw("</code></span>");
    }
    p.raw("</td><td class=\"n\">").num(call.messages.size() + call.messages_not_kept).raw("</td></tr>");
  }
  p.raw("</tbody></table></section>");
}

void call_section(Page& p, const CallLadder& call, std::size_t number, bool diagram) {
  bool pass = passes(call);
  bool soft = std::all_of(call.verdicts.begin(), call.verdicts.end(),
                          [](const Verdict& v) { return tone(v.verdict) != "bad"; });
  p.raw("<section class=\"call ").raw(pass ? "pass" : soft ? "fail soft" : "fail").raw("\" id=\"call-").num(number)
      .raw("\" data-verdict=\"").raw(verdict_attr(call)).raw("\" data-call-id=\"").text(call.call_id).raw("\">");
  p.raw("<h2><span class=\"num\">#").num(number).raw("</span><span>Call-ID</span> <code class=\"cid\">")
      .text(call.call_id).raw("</code><a class=\"top-link\" href=\"#top\">top &uarr;</a></h2>");
  p.raw("<div class=\"meta\">").text(counted(call.messages.size(), "message", "messages"));
  const LadderMessage* first = nullptr;
  for (const auto& m : call.messages)
    if (m.has_time && (!first || m.time < first->time)) first = &m;
  if (first) p.raw(" &middot; from ").text(utc_text(first->time));
  if (call.messages_not_kept)
    p.raw(" &middot; <span class=\"drop\">").text(counted(call.messages_not_kept, "later message", "later messages"))
        .raw(" not kept</span>");
  auto lay = diagram ? lay_out(call) : Layout{};
  // A diagram too wide to sit beside the verdicts goes under them, full width.
  p.raw("</div><div class=\"cbody").raw(lay.width > kBesideWidth ? " wide" : "").raw("\"><div class=\"verdicts\">");
  if (call.verdicts.empty())
    p.raw("<p class=\"noverdict\">No auth flow ended in this call (only in-dialog or unmatched messages).</p>");
  for (const auto& v : call.verdicts) verdict_card(p, v);
  if (diagram) {
    p.raw("</div><div class=\"ladwrap\">");
    ladder(p, call, lay);
  } else {
    p.raw("</div><div class=\"nodiagram\">Diagram left out: this page draws at most ").num(kPageArrows)
        .raw(" messages.");
  }
  p.raw("</div></div></section>\n");
}

}  // namespace

void write_html(std::ostream& out, const std::vector<InputSummary>& inputs, const AnalysisStats& stats,
                const std::vector<CallLadder>& ladders) {
  Page p;
  p.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
        "<meta name=\"generator\" content=\"sipwitness analyze\"><title>sipwitness analysis: ");
  for (std::size_t i = 0; i < inputs.size() && i < 3; ++i) p.raw(i ? ", " : "").text(inputs[i].file);
  if (inputs.size() > 3) p.raw(", &hellip;");
  p.raw("</title><style>").raw(kStyle).raw("</style></head><body>").raw(kMarkers);
  std::size_t diagrams = 0, arrows = 0;
  while (diagrams < ladders.size() && arrows + ladders[diagrams].messages.size() <= kPageArrows)
    arrows += ladders[diagrams++].messages.size();
  header(p, inputs, stats, ladders, diagrams);
  summary(p, stats, ladders);
  p.raw("<main>");
  if (ladders.empty()) {
    p.raw("<p class=\"empty\">No SIP calls were found in the input.</p>");
  } else {
    toc(p, ladders);
  }
  p.flush(out);
  for (std::size_t i = 0; i < ladders.size(); ++i) {
    call_section(p, ladders[i], i + 1, i < diagrams);
    p.flush(out);
  }
  p.raw("</main><footer>Written by <code>sipwitness analyze</code>. Verdict names and evidence keys are those of the "
        "verdict log; hover an arrow for the whole message summary.</footer></body></html>\n");
  p.flush(out);
}

}  // namespace sw::capture
