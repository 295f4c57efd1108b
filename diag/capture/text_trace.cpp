#include "diag/capture/text_trace.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "diag/capture/sniff.hpp"
#include "proxy/sip/header.hpp"
#include "proxy/sip/text.hpp"

namespace sw::capture {
namespace {

using std::chrono::nanoseconds;
using std::chrono::sys_days;

constexpr std::size_t kChunk = 64 * 1024;
// Outside a message, a longer line can be neither a start line nor a trace
// marker: it is skipped without being held.
constexpr std::uint64_t kMaxScanLine = 16 * 1024;
// A message spanning more of the file than this is unreadable; it bounds what
// is held at once.
constexpr std::uint64_t kMaxMessage = 256 * 1024;
constexpr std::uint64_t kProgressStep = 4 * 1024 * 1024;
// Asterisk's default log timestamp ("Nov 21 10:00:00") has no year. The current
// year would make the result depend on the day it runs, so such dates are put in
// 2000 (a leap year, so Feb 29 exists), moving on a year when the date jumps back
// by months (a trace across New Year).
constexpr int kYearlessBase = 2000;
constexpr std::string_view kCrlf = "\r\n";

std::string_view trim_right(std::string_view s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_blank(std::string_view s) {
  return trim_right(s).empty();
}

// Next space-separated word; runs of spaces count as one (Asterisk pads days).
std::string_view next_word(std::string_view& s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  auto word = s.substr(0, s.find(' '));
  s.remove_prefix(word.size());
  return word;
}

// sipdump's record lines: "====================", "~~~~...", "||||...".
constexpr std::size_t kRunLength = 20;
bool is_run(std::string_view s, char c) {
  s = trim_right(s);
  return s.size() >= kRunLength && s.find_first_not_of(c) == std::string_view::npos;
}

// ---- timestamps ------------------------------------------------------------
// sngrep and Asterisk print the local time of the machine that wrote the trace
// without saying which zone; such times are taken as UTC.

TimePoint at(sys_days day, nanoseconds time_of_day) {
  return std::chrono::time_point_cast<TimePoint::duration>(day + time_of_day);
}

// Up to nine digits after a decimal point.
std::optional<nanoseconds> fraction(std::string_view digits) {
  if (digits.empty() || digits.size() > 9) return std::nullopt;
  auto v = sip::parse_uint<std::uint64_t>(digits);
  if (!v) return std::nullopt;
  auto ns = *v;
  for (auto i = digits.size(); i < 9; ++i) ns *= 10;
  return nanoseconds(ns);
}

// "HH:MM:SS" with an optional fraction.
std::optional<nanoseconds> time_of_day(std::string_view s) {
  if (s.size() < 8 || s[2] != ':' || s[5] != ':') return std::nullopt;
  auto h = sip::parse_uint<unsigned>(s.substr(0, 2));
  auto m = sip::parse_uint<unsigned>(s.substr(3, 2));
  auto sec = sip::parse_uint<unsigned>(s.substr(6, 2));
  if (!h || !m || !sec || *h > 23 || *m > 59 || *sec > 60) return std::nullopt;
  nanoseconds t = std::chrono::hours(*h) + std::chrono::minutes(*m) + std::chrono::seconds(*sec);
  auto rest = s.substr(8);
  if (rest.empty()) return t;
  if (rest.front() != '.') return std::nullopt;
  auto frac = fraction(rest.substr(1));
  if (!frac) return std::nullopt;
  return t + *frac;
}

// Years the nanosecond clock holds (it overflows in 2262).
std::optional<sys_days> date_of(int year, unsigned month, unsigned day) {
  if (year < 1970 || year > 2200) return std::nullopt;
  std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{month},
                                  std::chrono::day{day}};
  if (!ymd.ok()) return std::nullopt;
  return sys_days{ymd};
}

// "YYYY<sep>MM<sep>DD".
std::optional<sys_days> full_date(std::string_view s, char sep) {
  if (s.size() != 10 || s[4] != sep || s[7] != sep) return std::nullopt;
  auto y = sip::parse_uint<unsigned>(s.substr(0, 4));
  auto m = sip::parse_uint<unsigned>(s.substr(5, 2));
  auto d = sip::parse_uint<unsigned>(s.substr(8, 2));
  if (!y || !m || !d) return std::nullopt;
  return date_of(static_cast<int>(*y), *m, *d);
}

std::optional<unsigned> month_named(std::string_view s) {
  static constexpr std::string_view kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  for (unsigned i = 0; i < 12; ++i)
    if (sip::iequals(s, kMonths[i])) return i + 1;
  return std::nullopt;
}

// "1700000000.123456": seconds since the epoch, as sipdump writes them.
std::optional<TimePoint> epoch_time(std::string_view s) {
  auto dot = s.find('.');
  auto secs = sip::parse_uint<std::uint64_t>(s.substr(0, dot));
  // Beyond this the nanosecond clock overflows (year 2262).
  if (!secs || *secs > 9'000'000'000ULL) return std::nullopt;
  nanoseconds frac{0};
  if (dot != std::string_view::npos) {
    auto f = fraction(s.substr(dot + 1));
    if (!f) return std::nullopt;
    frac = *f;
  }
  auto since = std::chrono::seconds(static_cast<std::int64_t>(*secs)) + frac;
  return std::chrono::time_point_cast<TimePoint::duration>(
      std::chrono::sys_time<nanoseconds>(since));
}

// ---- addresses and transports ----------------------------------------------

bool is_port(std::string_view s) { return sip::parse_uint<std::uint16_t>(s).has_value(); }

// "ip:port", with IPv6 hosts in brackets as CapturedMessage wants them; "" when
// either part is missing.
std::string join_host_port(std::string_view host, std::string_view port) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host.empty() || !is_port(port)) return {};
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out.append("[").append(host).append("]");
  } else {
    out.append(host);
  }
  return out.append(":").append(port);
}

// "192.0.2.10:5060", "[2001:db8::10]:5060" or the bare "2001:db8::10:5060"
// (the port is after the last colon).
std::string host_port(std::string_view s) {
  auto colon = s.rfind(':');
  if (colon == std::string_view::npos) return {};
  return join_host_port(s.substr(0, colon), s.substr(colon + 1));
}

// CapturedMessage::transport is a view, so it must point at static strings.
std::string_view transport_named(std::string_view name) {
  // pjsip names IPv6 transports "UDP6", "TCP6", "TLS6".
  if (name.size() == 4 && name.back() == '6') name.remove_suffix(1);
  if (sip::iequals(name, "udp")) return "udp";
  if (sip::iequals(name, "tcp")) return "tcp";
  if (sip::iequals(name, "tls")) return "tls";
  return "";
}

// ---- trace markers -----------------------------------------------------------

// What a trace says about the message that follows.
struct Meta {
  std::optional<TimePoint> time;
  std::string_view transport;
  std::string src, dst;
};

// sngrep "Save as .txt": "2026/11/21 10:00:00.123456 192.0.2.10:5060 -> 192.0.2.1:5060".
std::optional<Meta> sngrep_header(std::string_view line) {
  if (line.empty() || line.front() < '0' || line.front() > '9') return std::nullopt;
  auto rest = trim_right(line);
  auto date = next_word(rest);
  auto time = next_word(rest);
  auto src = next_word(rest);
  auto arrow = next_word(rest);
  auto dst = next_word(rest);
  if (arrow != "->" || dst.empty() || !rest.empty()) return std::nullopt;
  auto day = full_date(date, '/');
  auto tod = time_of_day(time);
  if (!day || !tod) return std::nullopt;
  Meta meta{at(*day, *tod), "", host_port(src), host_port(dst)};
  if (meta.src.empty() || meta.dst.empty()) return std::nullopt;
  return meta;
}

// Asterisk `pjsip set logger on`:
//   <--- Received SIP request (532 bytes) from UDP:192.0.2.10:5060 --->
//   <--- Transmitting SIP response (498 bytes) to UDP:192.0.2.10:5060 --->
// Only the peer is printed; the local side stays "". The log prefix carrying
// the time is read separately (asterisk_time).
std::optional<Meta> pjsip_header(std::string_view line) {
  static constexpr std::string_view kReceived = "<--- Received SIP ";
  static constexpr std::string_view kTransmitting = "<--- Transmitting SIP ";
  auto at_marker = line.find(kReceived);
  bool received = at_marker != std::string_view::npos;
  if (!received) at_marker = line.find(kTransmitting);
  if (at_marker == std::string_view::npos) return std::nullopt;
  auto rest = line.substr(at_marker);
  std::string_view word = received ? " from " : " to ";
  auto peer_at = rest.find(word);
  if (peer_at == std::string_view::npos) return std::nullopt;
  auto peer = rest.substr(peer_at + word.size());
  auto close = peer.find(" --->");
  if (close == std::string_view::npos) return std::nullopt;
  peer = peer.substr(0, close);
  auto colon = peer.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  Meta meta;
  meta.transport = transport_named(peer.substr(0, colon));
  (received ? meta.src : meta.dst) = host_port(peer.substr(colon + 1));
  return meta;
}

// Lines that begin a new record in some trace format: a message body that runs
// into one was cut short.
bool is_marker(std::string_view line) {
  return is_run(line, '=') || is_run(line, '~') || is_run(line, '|') || sngrep_header(line) ||
         pjsip_header(line);
}

// ---- input -------------------------------------------------------------------

// A sliding window over the stream: file bytes from base_ on. Bytes before the
// position handed to release() are dropped at the next read, so only the
// current line or message (plus a chunk) is ever held.
class Window {
 public:
  Window(std::istream& in, const ProgressSink& progress, std::uint64_t total)
      : in_(in), progress_(progress), total_(total) {}

  std::uint64_t end() const { return base_ + buf_.size(); }  // bytes read so far
  bool failed() const { return failed_; }
  char at(std::uint64_t offset) const { return buf_[offset - base_]; }
  std::string_view view(std::uint64_t from, std::uint64_t to) const {
    return std::string_view(buf_).substr(from - base_, to - from);
  }
  void release(std::uint64_t upto) { keep_ = upto; }

  // Reads until `upto` bytes are held or the stream ends.
  void ensure(std::uint64_t upto) {
    while (end() < upto && read_chunk()) {
    }
  }

  // The first '\n' in [from, limit), reading as needed; nullopt when the stream
  // ends or the limit comes first.
  std::optional<std::uint64_t> find_lf(std::uint64_t from, std::uint64_t limit) {
    for (;;) {
      auto stop = std::min(end(), limit);
      if (auto lf = search(from, stop)) return lf;
      from = std::max(from, stop);
      if (end() >= limit || !read_chunk()) return std::nullopt;
    }
  }

  // Skips to just past the next '\n' (or the end) holding one chunk at a time.
  std::uint64_t skip_line(std::uint64_t from) {
    for (;;) {
      if (auto lf = search(from, end())) return *lf + 1;
      from = end();
      release(from);
      if (!read_chunk()) return from;
    }
  }

 private:
  std::optional<std::uint64_t> search(std::uint64_t from, std::uint64_t to) const {
    if (from >= to) return std::nullopt;
    const char* p = buf_.data() + (from - base_);
    const void* lf = std::memchr(p, '\n', to - from);
    if (!lf) return std::nullopt;
    return from + static_cast<std::uint64_t>(static_cast<const char*>(lf) - p);
  }

  bool read_chunk() {
    if (done_) return false;
    if (keep_ - base_ >= kChunk) {
      buf_.erase(0, keep_ - base_);
      base_ = keep_;
    }
    auto old = buf_.size();
    buf_.resize(old + kChunk);
    in_.read(buf_.data() + old, static_cast<std::streamsize>(kChunk));
    auto got = static_cast<std::size_t>(in_.gcount());
    buf_.resize(old + got);
    // read() returns short only at the end of the stream or on an error.
    if (got < kChunk) done_ = true;
    if (in_.bad()) failed_ = true;
    if (progress_ && end() >= next_progress_) {
      progress_(end(), total_);
      next_progress_ = (end() / kProgressStep + 1) * kProgressStep;
    }
    return got > 0;
  }

  std::istream& in_;
  const ProgressSink& progress_;
  std::uint64_t total_;
  std::string buf_;
  std::uint64_t base_ = 0;  // file offset of buf_[0]
  std::uint64_t keep_ = 0;  // bytes before this may go
  std::uint64_t next_progress_ = kProgressStep;
  bool done_ = false;
  bool failed_ = false;
};

struct Position {
  std::uint64_t offset = 0;
  std::uint64_t line = 1;
};

// One line of the file: content [begin, end), the next line starts at next.
struct Line {
  std::uint64_t begin = 0, end = 0, next = 0;
  std::uint64_t number = 0;
  bool has_lf = false, has_cr = false;
  bool overlong = false;  // no line break within the limit asked for
  bool eof = false;       // no line at all: the file ended

  Position after() const { return {next, number + (has_lf ? 1 : 0)}; }
  std::uint64_t content_size() const { return end - begin; }
  std::uint64_t raw_size() const { return next - begin; }
  std::uint64_t crlf_size() const { return content_size() + (has_lf ? 2 : 0); }
};

// How a body's bytes are counted against Content-Length: as the file has them,
// or with every line break made CRLF (a trace that lost its CRs on the way).
enum class Measure { raw, crlf };

// Where Content-Length ends in the body lines: `take` bytes into line `index`.
struct Cut {
  Measure measure;
  std::size_t index;
  std::uint64_t take;
  bool whole;        // the line and its break are all in
  bool at_line_end;  // the body ends at the line break (whole, or just before it)
};

class Reader {
 public:
  Reader(std::istream& in, const MessageSink& sink, const ProgressSink& progress,
         std::uint64_t total)
      : window_(in, progress, total), sink_(sink) {}

  ReadOutcome run(const std::string& name) {
    Position pos = skip_bom();
    for (;;) {
      window_.release(pos.offset);
      Line line = read_line(pos, kMaxScanLine);
      if (line.eof) break;
      if (line.overlong) {
        pos = {window_.skip_line(pos.offset), pos.line + 1};
        forget();
        continue;
      }
      auto text = text_of(line);
      if (is_sip_start_line(text)) {
        pos = read_message(line);
      } else {
        note(text);
        pos = line.after();
      }
    }
    ReadOutcome outcome;
    outcome.stats = stats_;
    outcome.stats.bytes = window_.end();
    if (window_.failed()) outcome.error = ReadError{name, window_.end(), "read error"};
    return outcome;
  }

 private:
  Position skip_bom() {
    static constexpr std::string_view kBom = "\xEF\xBB\xBF";
    window_.ensure(kBom.size());
    if (window_.end() >= kBom.size() && window_.view(0, kBom.size()) == kBom)
      return {kBom.size(), 1};
    return {};
  }

  Line read_line(Position pos, std::uint64_t max_size) {
    Line line;
    line.begin = pos.offset;
    line.number = pos.line;
    if (auto lf = window_.find_lf(pos.offset, pos.offset + max_size)) {
      line.end = *lf;
      line.next = *lf + 1;
      line.has_lf = true;
      if (line.end > line.begin && window_.at(line.end - 1) == '\r') {
        --line.end;
        line.has_cr = true;
      }
    } else if (window_.end() - pos.offset >= max_size) {
      line.overlong = true;
    } else {
      line.end = line.next = window_.end();
      line.eof = line.begin == line.end;
    }
    return line;
  }

  std::string_view text_of(const Line& line) const { return window_.view(line.begin, line.end); }

  // ---- between messages ----

  void forget() {
    meta_ = Meta{};
    in_sipdump_fields_ = false;
    sipdump_src_ip_.clear();
    sipdump_dst_ip_.clear();
  }

  // A line that is not a start line: maybe a trace marker describing the next
  // message. Any other text ends what a marker said, so it never reaches a
  // message further on.
  void note(std::string_view text) {
    if (in_sipdump_fields_) {
      if (is_run(text, '~')) {
        in_sipdump_fields_ = false;
        return;
      }
      if (sipdump_field(text)) return;
      in_sipdump_fields_ = false;
    }
    if (is_run(text, '=')) {
      forget();
      in_sipdump_fields_ = true;
      return;
    }
    if (auto meta = sngrep_header(text)) {
      meta_ = std::move(*meta);
      return;
    }
    if (auto meta = pjsip_header(text)) {
      meta_ = std::move(*meta);
      meta_.time = asterisk_time(text);
      return;
    }
    if (!is_blank(text)) forget();
  }

  // Kamailio sipdump, between "====================" and "~~~~~~~~~~~~~~~~~~~~":
  // "tag: rcv", "pid: 1234", "process: 1", "time: 1700000000.123456", "date: ...",
  // "proto: udp ipv4", "srcip: ...", "srcport: ...", "dstip: ...", "dstport: ...".
  bool sipdump_field(std::string_view line) {
    auto colon = line.find(':');
    if (colon == std::string_view::npos || !sip::is_token(line.substr(0, colon))) return false;
    auto key = line.substr(0, colon);
    auto value = sip::trim(line.substr(colon + 1));
    if (key == "time") {
      meta_.time = epoch_time(value);
    } else if (key == "proto") {
      meta_.transport = transport_named(next_word(value));
    } else if (key == "srcip") {
      sipdump_src_ip_.assign(value);
    } else if (key == "srcport") {
      meta_.src = join_host_port(sipdump_src_ip_, value);
    } else if (key == "dstip") {
      sipdump_dst_ip_.assign(value);
    } else if (key == "dstport") {
      meta_.dst = join_host_port(sipdump_dst_ip_, value);
    }
    return true;
  }

  // The "[...]" an Asterisk log line starts with: "[Nov 21 10:00:00]" by
  // default, "[2026-11-21 10:00:00.123]" with a dateformat that has the year.
  std::optional<TimePoint> asterisk_time(std::string_view line) {
    if (line.empty() || line.front() != '[') return std::nullopt;
    auto close = line.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    auto inside = line.substr(1, close - 1);
    auto first = next_word(inside);
    auto second = next_word(inside);
    auto third = next_word(inside);
    if (!next_word(inside).empty()) return std::nullopt;
    if (third.empty()) {
      auto day = full_date(first, '-');
      auto tod = time_of_day(second);
      if (!day || !tod) return std::nullopt;
      return at(*day, *tod);
    }
    auto month = month_named(first);
    auto day = sip::parse_uint<unsigned>(second);
    auto tod = time_of_day(third);
    if (!month || !day || !tod) return std::nullopt;
    auto date = date_of(yearless_year_, *month, *day);
    if (date && last_yearless_ && *date + std::chrono::days(183) < *last_yearless_) {
      ++yearless_year_;
      date = date_of(yearless_year_, *month, *day);
    }
    if (!date) return std::nullopt;
    last_yearless_ = date;
    return at(*date, *tod);
  }

  // ---- one message ----

  // Reads the message whose start line is `start`; returns where scanning goes on.
  Position read_message(const Line& start) {
    Meta meta = std::exchange(meta_, Meta{});
    in_sipdump_fields_ = false;
    if (!start.has_lf) return unreadable(start, start.after());
    const std::uint64_t limit = start.begin + kMaxMessage;
    message_.assign(trim_right(text_of(start)));
    message_ += kCrlf;

    std::optional<std::uint64_t> content_length;
    Position pos = start.after();
    bool blank = false;
    for (bool first = true;; first = false) {
      if (pos.offset >= limit) return unreadable(start, pos);
      Line line = read_line(pos, limit - pos.offset);
      if (line.overlong) return unreadable(start, pos);
      if (line.eof) break;
      auto text = text_of(line);
      if (is_blank(text)) {
        blank = true;
        pos = line.after();
        break;
      }
      // RFC 3261 7.3.1: a line starting with whitespace continues the header.
      if (!first && (text.front() == ' ' || text.front() == '\t')) {
        append_line(text);
        pos = line.after();
        continue;
      }
      auto colon = text.find(':');
      if (colon == std::string_view::npos) break;
      auto name = trim_right(text.substr(0, colon));
      if (!sip::is_token(name)) break;
      if (sip::header_id(name) == sip::HeaderId::ContentLength) {
        auto value = sip::parse_uint<std::uint64_t>(sip::trim(text.substr(colon + 1)));
        if (!value || (content_length && *content_length != *value)) return unreadable(start, pos);
        content_length = value;
      }
      append_line(text);
      pos = line.after();
    }
    message_ += kCrlf;
    if (!blank) {
      // Traces sometimes drop the empty line after the headers (or the file
      // ends there); only a message declaring no body is known to be whole then.
      if (content_length != 0u) return unreadable(start, pos);
      return emit(meta, start, pos);
    }
    if (!content_length) return body_to_separator(meta, start, pos, limit);
    if (*content_length == 0) return emit(meta, start, pos);
    return body_by_length(meta, start, pos, limit, *content_length);
  }

  // Without Content-Length the body runs to a blank line, a trace marker, the
  // next start line or the end of the file.
  Position body_to_separator(const Meta& meta, const Line& start, Position pos,
                             std::uint64_t limit) {
    for (;;) {
      if (pos.offset >= limit) return unreadable(start, pos);
      Line line = read_line(pos, limit - pos.offset);
      if (line.overlong) return unreadable(start, pos);
      if (line.eof) break;
      auto text = text_of(line);
      if (is_blank(text) || is_sip_start_line(text) || is_marker(text)) break;
      message_ += text;
      if (line.has_lf) message_ += kCrlf;
      pos = line.after();
    }
    return emit(meta, start, pos);
  }

  // The body is Content-Length bytes, but a text trace may have lost the CRs
  // of the message it shows (pasted, or written on another system), or kept
  // bare LFs the sender really sent. A trace whose start line still ends in CRLF
  // kept its bytes: its body is counted as it is. One whose start line ends in a
  // bare LF lost its CRs: the body is counted with CRLF breaks, unless that ends
  // inside a line and the file's own bytes end exactly at a line break.
  Position body_by_length(const Meta& meta, const Line& start, Position pos, std::uint64_t limit,
                          std::uint64_t length) {
    if (length > kMaxMessage) return unreadable(start, pos);
    const Measure primary = start.has_cr ? Measure::raw : Measure::crlf;
    body_.clear();
    std::uint64_t raw = 0, crlf = 0;
    // Raw counts grow slower, so once they reach the length both counts have.
    while (raw < length && pos.offset < limit) {
      Line line = read_line(pos, limit - pos.offset);
      if (line.eof || line.overlong || is_marker(text_of(line))) break;
      body_.push_back(line);
      raw += line.raw_size();
      crlf += line.crlf_size();
      pos = line.after();
      if (primary == Measure::crlf && crlf == length) break;
    }
    auto cut = find_cut(primary, length);
    if (!cut) return unreadable(start, pos);  // the file or the trace record ended first
    if (!cut->at_line_end && primary == Measure::crlf) {
      if (auto own = find_cut(Measure::raw, length); own && own->at_line_end) cut = own;
    }
    if (!cut->at_line_end && swallows_a_message(*cut)) return unreadable(start, pos);
    if (cuts_into_closing_line(*cut)) return unreadable(start, pos);
    return emit(meta, start, append_body(*cut));
  }

  std::optional<Cut> find_cut(Measure measure, std::uint64_t length) const {
    std::uint64_t done = 0;
    for (std::size_t i = 0; i < body_.size(); ++i) {
      const Line& line = body_[i];
      auto size = measure == Measure::raw ? line.raw_size() : line.crlf_size();
      if (done + size >= length) {
        auto take = length - done;
        return Cut{measure, i, take, take == size, take == size || take == line.content_size()};
      }
      done += size;
    }
    return std::nullopt;
  }

  // A length that ends inside a line after running over an empty line and a
  // start line most likely belongs to a truncated body that ran into the next
  // message (a message/sipfrag body ends cleanly at a line break).
  bool swallows_a_message(const Cut& cut) const {
    for (std::size_t i = 0; i <= cut.index; ++i) {
      bool after_blank = i == 0 || is_blank(text_of(body_[i - 1]));
      if (after_blank && is_sip_start_line(text_of(body_[i]))) return true;
    }
    return false;
  }

  // sipdump closes a record with a run of '|' right after the body, on the
  // body's last line when the body has no final line break: a length reaching
  // into that run belongs to a body the trace did not keep whole.
  bool cuts_into_closing_line(const Cut& cut) const {
    auto text = trim_right(text_of(body_[cut.index]));
    std::size_t run = 0;
    while (run < text.size() && text[text.size() - 1 - run] == '|') ++run;
    return run >= kRunLength && cut.take > text.size() - run;
  }

  // Appends the body up to the cut; returns where the next message may start.
  Position append_body(const Cut& cut) {
    const Line& last = body_[cut.index];
    if (cut.measure == Measure::raw) {
      message_ += window_.view(body_.front().begin, last.begin + cut.take);
    } else {
      for (std::size_t i = 0; i < cut.index; ++i) append_line(text_of(body_[i]));
      auto text = text_of(last);
      if (cut.take <= text.size()) {
        message_ += text.substr(0, cut.take);
      } else {
        message_ += text;
        message_ += cut.whole ? kCrlf : "\r";
      }
    }
    if (cut.whole) return last.after();
    // The rest of the line (the next message, or a trace's own marker) is read again.
    std::uint64_t offset = last.begin + cut.take;
    if (cut.measure == Measure::crlf && cut.take > last.content_size())
      offset = last.end + (last.has_cr ? 1 : 0);  // the length ended between CR and LF
    return {offset, last.number};
  }

  void append_line(std::string_view text) {
    message_ += text;
    message_ += kCrlf;
  }

  // Counted and skipped. Scanning resumes on the line after the start line, so
  // a message that this one's bad framing ran into is still found; `reached` is
  // how far it read. A file of nothing but failing messages would make that
  // re-reading quadratic, so once it exceeds the bytes read so far, scanning
  // goes on from `reached` instead.
  Position unreadable(const Line& start, Position reached) {
    ++stats_.unreadable_text;
    auto resume = start.after();
    reread_ += reached.offset - resume.offset;
    return reread_ > window_.end() ? reached : resume;
  }

  Position emit(const Meta& meta, const Line& start, Position next) {
    CapturedMessage m;
    m.time = meta.time;
    m.transport = meta.transport;
    m.src = meta.src;
    m.dst = meta.dst;
    m.bytes = message_;
    m.offset = start.begin;
    m.line = start.number;
    ++stats_.sip_messages;
    if (sink_) sink_(m);
    return next;
  }

  Window window_;
  const MessageSink& sink_;
  ReadStats stats_;
  Meta meta_;  // what the last marker said, for the next message
  bool in_sipdump_fields_ = false;
  std::string sipdump_src_ip_, sipdump_dst_ip_;
  int yearless_year_ = kYearlessBase;
  std::optional<sys_days> last_yearless_;
  std::uint64_t reread_ = 0;  // bytes read again after unreadable messages
  std::string message_;       // the message being handed over
  std::vector<Line> body_;    // body lines of the current message
};

}  // namespace

ReadOutcome read_text_trace(std::istream& in, const std::string& name, const MessageSink& sink,
                            const ProgressSink& progress, std::uint64_t total_bytes) {
  Reader reader(in, sink, progress, total_bytes);
  auto outcome = reader.run(name);
  if (progress) progress(outcome.stats.bytes, total_bytes);  // the last step, however small
  return outcome;
}

}  // namespace sw::capture
